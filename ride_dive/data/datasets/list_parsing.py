"""Reading list files (``relative/path label`` per line) and checking the files they name."""

import codecs
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DatasetError

__all__ = ["parse_list", "find_missing", "outside_root"]


def outside_root(path: str, root: str) -> Optional[str]:
    """Why ``path`` (a list line's path) names a file outside ``root``; None when it does not.

    Decided on the text alone, never by resolving symlinks: a folder symlinked into the
    root (the usual way to put images on another disk) is inside it. An absolute path is
    inside when it lies under the absolute root; a relative one must not climb out with
    "..".
    """
    if os.path.isabs(path):
        base = os.path.abspath(root)
        if os.path.commonpath([base, os.path.normpath(path)]) == base:
            return None
        return "an absolute path"
    normal = os.path.normpath(path)
    if normal == os.pardir or normal.startswith(os.pardir + os.sep):
        return "'..' climbs out of it"
    return None


def _shown(text: str) -> str:
    """``text`` cut to 80 characters for a message."""
    return text if len(text) <= 80 else text[:77] + "..."


def parse_list(
    list_file: str, num_classes: int, root: Optional[str] = None
) -> Tuple[List[bytes], List[int], List[int]]:
    """``(paths, labels, line numbers)`` of a list file; any bad line is a ``DatasetError``.

    A UTF-8 byte order mark at the start of the file is ignored. With ``root``, a line
    whose path lies outside it (:func:`outside_root`) is an error too.
    """
    paths, labels, lines = [], [], []
    with open(list_file, "rb") as f:  # lines decoded one by one: errors name their line
        for number, raw in enumerate(f, start=1):
            where = f"{list_file}:{number}"
            skipped = 0
            if number == 1 and raw.startswith(codecs.BOM_UTF8):  # as "utf-8-sig" reads it
                raw, skipped = raw[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                raise DatasetError(
                    f"{where}: not UTF-8 text ({e.reason} at byte {e.start + skipped}); a list "
                    "file holds one 'relative/path label' line per image."
                ) from None
            if not text:
                continue
            parts = text.rsplit(None, 1)
            if len(parts) != 2:
                raise DatasetError(
                    f"{where}: expected 'relative/path label', got '{_shown(text)}'."
                )
            try:
                label = int(parts[1])
            except ValueError:
                raise DatasetError(f"{where}: label '{parts[1]}' is not an integer.") from None
            if not 0 <= label < num_classes:
                raise DatasetError(f"{where}: label {label} is out of range [0, {num_classes}).")
            reason = None if root is None else outside_root(parts[0], root)
            if reason:
                raise DatasetError(
                    f"{where}: image path '{_shown(parts[0])}' lies outside DATASETS.ROOT "
                    f"({root}): {reason}. List image paths relative to DATASETS.ROOT "
                    "(folders symlinked into it are fine), or, if you trust this list file, set "
                    "DATASETS.ALLOW_PATHS_OUTSIDE_ROOT True to read files anywhere."
                )
            paths.append(parts[0].encode("utf-8"))
            labels.append(label)
            lines.append(number)
    if not paths:
        raise DatasetError(f"{list_file} lists no images; expected 'relative/path label' lines.")
    return paths, labels, lines


def find_missing(root: str, relative_paths: Sequence[bytes]) -> np.ndarray:
    """Boolean mask of the paths (relative to ``root``) that name no existing file.

    Each directory is listed once instead of stat-ing every file, which keeps the check
    to seconds for hundreds of thousands of images, even on network file systems.
    """
    by_dir = {}
    for i, rel in enumerate(relative_paths):
        directory, name = os.path.split(os.path.join(root, rel.decode("utf-8")))
        by_dir.setdefault(directory, []).append((i, name))
    missing = np.zeros(len(relative_paths), dtype=bool)
    for directory, entries in by_dir.items():
        try:
            present = set(os.listdir(directory))
        except OSError:  # no such directory, or not listable: check the files one by one
            present = set()
        for i, name in entries:
            # A name not listed may still open (case-insensitive file systems): stat it.
            if name not in present and not os.path.isfile(os.path.join(directory, name)):
                missing[i] = True
    return missing
