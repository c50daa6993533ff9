"""Verified, cached checkpoint downloads for the model zoo.

The transfer itself is ``torch.hub.download_url_to_file`` (http, https and file URLs, a
progress bar, a temporary file moved into place). Around it: a cache directory, a base URL
that can point at a mirror, and verification of size and sha256 against the manifest before
the file is placed, atomically, under its final name. A file that fails verification is
deleted and the error says why; a cached file is re-verified on every use, so a file
corrupted on disk is downloaded again rather than loaded.
"""

import contextlib
import logging
import os
import urllib.error
import uuid
from typing import Optional

import torch.hub

from ..checkpoint import CheckpointError, file_sha256
from .manifest import ZooEntry

__all__ = [
    "CACHE_ENV",
    "BASE_URL_ENV",
    "DownloadError",
    "cache_dir",
    "checkpoint_url",
    "fetch",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "RIDE_DIVE_CACHE"
BASE_URL_ENV = "RIDE_DIVE_MODEL_ZOO_URL"


class DownloadError(CheckpointError):
    """A zoo checkpoint that could not be downloaded, or failed verification."""


def cache_dir(override: Optional[str] = None) -> str:
    """Where downloaded checkpoints are kept: ``override``, else ``$RIDE_DIVE_CACHE``, else
    ``$XDG_CACHE_HOME/ride_dive`` (``~/.cache/ride_dive``); zoo files go to its
    ``model_zoo/`` subdirectory."""
    root = override or os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        root = os.path.join(xdg, "ride_dive")
    return os.path.join(os.path.expanduser(root), "model_zoo")


def checkpoint_url(entry: ZooEntry, base_url: str) -> str:
    """The entry's file under ``base_url`` (a trailing slash is optional)."""
    return base_url.rstrip("/") + "/" + entry.file


def _verification_error(entry: ZooEntry, path: str) -> Optional[str]:
    """Why ``path`` is not the entry's file, or None when size and sha256 match."""
    size = os.path.getsize(path)
    if size != entry.size:
        kind = "truncated" if size < entry.size else "too long"
        return f"{kind}: {size} bytes instead of {entry.size}"
    digest = file_sha256(path)
    if digest != entry.sha256:
        return f"sha256 {digest} instead of {entry.sha256}"
    return None


def fetch(
    entry: ZooEntry, base_url: str, cache: Optional[str] = None, progress: bool = True
) -> str:
    """The local path of ``entry``'s verified checkpoint, downloading it if needed.

    Args:
        entry: the manifest entry (file, size, sha256).
        base_url: the zoo's base URL (``http(s)://...`` or ``file:///...``).
        cache: cache root (see :func:`cache_dir`).
        progress: show a progress bar on stderr while downloading.

    Raises:
        DownloadError: the URL cannot be fetched (HTTP status, unreachable host) or the
            downloaded file's size or sha256 differs from the manifest (the file is deleted).
    """
    target = os.path.join(cache_dir(cache), *entry.file.split("/"))
    if os.path.isfile(target):
        problem = _verification_error(entry, target)
        if problem is None:
            logger.info("Model zoo: using cached %s", target)
            return target
        logger.warning(
            "Model zoo: cached %s is damaged (%s); downloading it again", target, problem
        )
        os.remove(target)
    if not base_url:
        raise DownloadError(
            f"No base URL for the model zoo: set ${BASE_URL_ENV} to the URL (or file:// "
            f"directory) that holds {entry.file}"
        )
    url = checkpoint_url(entry, base_url)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = f"{target}.{uuid.uuid4().hex[:12]}.unverified"
    logger.info("Model zoo: downloading %s", url)
    try:
        try:
            torch.hub.download_url_to_file(url, staging, hash_prefix=None, progress=progress)
        except urllib.error.HTTPError as e:
            raise DownloadError(
                f"Downloading '{entry.name}' failed: HTTP {e.code} {e.reason} for {url}. "
                f"The base URL may not hold this file; set ${BASE_URL_ENV} to a mirror "
                "that does."
            ) from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise DownloadError(
                f"Downloading '{entry.name}' from {url} failed: {reason}. Check the network, "
                f"or set ${BASE_URL_ENV} to a reachable mirror (http(s):// or file://)."
            ) from e
        problem = _verification_error(entry, staging)
        if problem is not None:
            raise DownloadError(
                f"The file downloaded from {url} is not the published '{entry.name}' "
                f"checkpoint ({problem}); it was deleted and nothing was loaded. A partial "
                "transfer or a mirror serving a different file causes this: try again, or "
                f"use another mirror (${BASE_URL_ENV})."
            )
        os.replace(staging, target)  # atomic: readers see no file or the verified one
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
    return target
