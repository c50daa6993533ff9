"""The project's path manager: turns the weights paths users write into local files.

Code that reads a weights file (``MODEL.WEIGHTS``, ``MODEL.TEACHER.WEIGHTS``) passes the
path through ``PathManager.get_local_path`` first. A plain path comes back unchanged; a
path with a registered prefix goes to its handler, e.g. ``zoo:<config name>``, whose
handler ``ride_dive.model_zoo`` registers when it is imported (``ride_dive.engine`` imports
it, so every tool has it). This keeps the low layers (checkpoint loading) free of imports
of the zoo above them, as detectron2 does with its ``catalog://`` handler.

The manager is this project's own instance, not iopath's global one, so that handlers
registered by other libraries in the same process cannot take over a prefix. Only local
paths and the registered prefixes are understood: no handler for ``http(s)://`` is
registered, because downloads must go through the zoo's size and sha256 check.
"""

import hashlib

from iopath.common.file_io import PathHandler
from iopath.common.file_io import PathManager as PathManagerBase

__all__ = ["PathHandler", "PathManager", "file_sha256"]

PathManager = PathManagerBase()


def file_sha256(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
