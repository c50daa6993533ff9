"""The file names of a run folder (``OUTPUT_DIR``), in one place.

Every tool that writes or reads a run goes through :class:`RunDir`, so a file is named once::

    run = RunDir(cfg.OUTPUT_DIR)
    run.results        # OUTPUT_DIR/results.json
    run.checkpoint("model_final")

What each file holds: ``config.yaml`` the merged config, ``log.txt`` the log,
``metrics.json`` the training scalars (one JSON object per line), ``results.json`` the
final evaluation, ``model_final.pth`` / ``model_best.pth`` / ``model_epoch_XXXX.pth`` the
checkpoints, ``last_checkpoint`` the name of the newest resumable one.
"""

import errno
import os
import re
import tempfile
from typing import Optional

from ..config import ConfigError

__all__ = [
    "RunDir",
    "ensure_writable_dir",
    "periodic_checkpoint_name",
    "parse_periodic_checkpoint",
]

_PERIODIC = re.compile(r"^model_epoch_(\d+)\.pth$")


def periodic_checkpoint_name(epoch: int) -> str:
    """Name (no ``.pth``) of the periodic checkpoint written after ``epoch`` epochs."""
    return f"model_epoch_{epoch:04d}"


def parse_periodic_checkpoint(file_name: str) -> Optional[int]:
    """The epoch of a periodic checkpoint's file name, or None for any other file."""
    match = _PERIODIC.match(file_name)
    return int(match.group(1)) if match else None


def ensure_writable_dir(
    path: str,
    key: str = "OUTPUT_DIR",
    holds: str = "the run's config, log, checkpoints and results",
    fix: str = "",
) -> None:
    """Create ``path`` if needed and check that a file can be written in it, so that a run
    (or an evaluation) whose output cannot be saved stops before it starts, not after.

    Args:
        path: the folder.
        key: how the user gave it (a config key or a command-line option).
        holds: what goes there, for the message.
        fix: what to do; default "Set {key} to a writable folder."

    Raises:
        ConfigError: naming ``key``, the folder and the reason (read-only file system,
            permission, a file in the way, ...).
    """
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_check_"):
            pass
    except OSError as e:
        reason = {
            errno.EROFS: "it is on a read-only file system",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.ENOTDIR: "a file, not a folder, is in the way",
            errno.EEXIST: "a file, not a folder, is in the way",
            errno.ENOSPC: "the disk is full",
        }.get(e.errno, e.strerror or str(e))
        raise ConfigError(
            f"{key} '{path}' cannot be written ({reason}): {holds} go there. "
            + (fix or f"Set {key} to a writable folder.")
        ) from None


class RunDir:
    """Paths of the files in one run folder.

    Args:
        root: the run folder (``cfg.OUTPUT_DIR``).
    """

    CONFIG = "config.yaml"
    LOG = "log.txt"
    METRICS = "metrics.json"
    RESULTS = "results.json"
    FINAL = "model_final"
    BEST = "model_best"
    LAST_CHECKPOINT = "last_checkpoint"
    TAU_NORM = "tau_norm.json"
    POSTHOC_LA = "posthoc_la.json"
    ROUTER_PLOT = "router_tradeoff.png"

    def __init__(self, root: str):
        self.root = root

    def path(self, name: str) -> str:
        """``root/name``."""
        return os.path.join(self.root, name)

    def checkpoint(self, name: str) -> str:
        """``root/<name>.pth`` (``name`` without the extension)."""
        return self.path(f"{name}.pth")

    @property
    def config(self) -> str:
        return self.path(self.CONFIG)

    @property
    def log(self) -> str:
        return self.path(self.LOG)

    @property
    def metrics(self) -> str:
        return self.path(self.METRICS)

    @property
    def results(self) -> str:
        return self.path(self.RESULTS)

    @property
    def final_model(self) -> str:
        return self.checkpoint(self.FINAL)

    @property
    def best_model(self) -> str:
        return self.checkpoint(self.BEST)

    @property
    def last_checkpoint(self) -> str:
        return self.path(self.LAST_CHECKPOINT)

    @property
    def tau_norm(self) -> str:
        return self.path(self.TAU_NORM)

    @property
    def posthoc_la(self) -> str:
        return self.path(self.POSTHOC_LA)

    @property
    def router_plot(self) -> str:
        return self.path(self.ROUTER_PLOT)
