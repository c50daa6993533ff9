"""The model zoo: packaged configs and verified downloads of published checkpoints.

    from ride_dive import model_zoo
    model_zoo.list_models()                                   # the manifest's entries
    cfg = model_zoo.get_config("FashionMNIST-LT/ride_dive_4e_r32.yaml")
    model = model_zoo.get("FashionMNIST-LT/ride_dive_4e_r32.yaml", trained=True)

Checkpoints are downloaded from the manifest's base URL, or from ``$RIDE_DIVE_MODEL_ZOO_URL``
(a mirror: ``http(s)://`` or ``file://``), into ``$RIDE_DIVE_CACHE`` (default
``~/.cache/ride_dive``), verified against the manifest's size and sha256, and read with
``torch.load(weights_only=True)`` only. ``MODEL.WEIGHTS zoo:<name>`` in any config or
command line resolves the same way: importing this package registers
:class:`ZooPathHandler` on ``ride_dive.utils.file_io.PathManager``, through which the
checkpointer reads every weights path.
"""

import os
from typing import List, Optional, Sequence

from torch import nn

from ..config import CfgNode, ConfigError, assert_cfg, get_cfg
from ..utils.file_io import PathHandler, PathManager
from .download import BASE_URL_ENV, CACHE_ENV, DownloadError, checkpoint_url, fetch
from .manifest import Manifest, ManifestError, ZooEntry
from .resources import config_path, list_config_names, manifest_path

__all__ = [
    "ZOO_PREFIX",
    "BASE_URL_ENV",
    "CACHE_ENV",
    "MANIFEST_ENV",
    "DownloadError",
    "Manifest",
    "ManifestError",
    "ZooEntry",
    "ZooPathHandler",
    "download",
    "get",
    "get_checkpoint_url",
    "get_config",
    "get_config_file",
    "inference_overrides",
    "list_config_names",
    "list_models",
    "load_manifest",
    "resolve_weights",
]

ZOO_PREFIX = "zoo:"
MANIFEST_ENV = "RIDE_DIVE_MODEL_ZOO_MANIFEST"


def load_manifest(path: Optional[str] = None) -> Manifest:
    """The manifest at ``path``, else ``$RIDE_DIVE_MODEL_ZOO_MANIFEST``, else the packaged one."""
    return Manifest.load(path or os.environ.get(MANIFEST_ENV) or manifest_path())


def list_models(manifest: Optional[str] = None) -> List[ZooEntry]:
    """Every published checkpoint, in manifest order."""
    return list(load_manifest(manifest).entries.values())


def _base_url(manifest: Manifest, base_url: Optional[str]) -> str:
    return base_url or os.environ.get(BASE_URL_ENV) or manifest.base_url


def get_checkpoint_url(
    name: str, base_url: Optional[str] = None, manifest: Optional[str] = None
) -> str:
    """The URL the checkpoint of entry ``name`` is downloaded from."""
    zoo = load_manifest(manifest)
    return checkpoint_url(zoo.get(name), _base_url(zoo, base_url))


def download(
    name: str,
    *,
    base_url: Optional[str] = None,
    cache: Optional[str] = None,
    progress: bool = True,
    manifest: Optional[str] = None,
) -> str:
    """Local path of entry ``name``'s checkpoint, downloaded and verified if not cached.

    Raises:
        ManifestError: no such entry.
        DownloadError: unreachable URL, HTTP error, or a size / sha256 mismatch.
    """
    zoo = load_manifest(manifest)
    return fetch(zoo.get(name), _base_url(zoo, base_url), cache, progress=progress)


def resolve_weights(path: str, **download_kwargs) -> str:
    """``path`` itself, or for ``zoo:<name>`` the verified local copy of that checkpoint."""
    if path.startswith(ZOO_PREFIX):
        return download(path[len(ZOO_PREFIX) :], **download_kwargs)
    return path


class ZooPathHandler(PathHandler):
    """``zoo:<config name>`` → the verified local copy of that entry's checkpoint.

    Registered on ``ride_dive.utils.file_io.PathManager`` when ``ride_dive.model_zoo`` is
    imported, so ``PathManager.get_local_path("zoo:<name>")`` (what the checkpointer and
    the teacher's config do with a weights path) downloads and verifies like
    :func:`download`, whose keyword arguments it passes on. Unknown names raise
    ``ManifestError`` and failed downloads ``DownloadError``, as there.
    """

    def _get_supported_prefixes(self) -> List[str]:
        return [ZOO_PREFIX]

    def _get_local_path(self, path: str, force: bool = False, **download_kwargs) -> str:
        # ``force`` (fetch again) is not needed: a cached file is re-verified against the
        # manifest on every use, and downloaded again when it does not match.
        return resolve_weights(path, **download_kwargs)


PathManager.register_handler(ZooPathHandler())


def get_config_file(name: str) -> str:
    """Path of the packaged config ``name`` (relative to ``configs/``)."""
    return config_path(name)


def get_config(name: str, trained: bool = False, **download_kwargs) -> CfgNode:
    """The packaged config ``name`` (with its ``_BASE_`` files merged), not frozen.

    With ``trained``, ``MODEL.WEIGHTS`` is the downloaded, verified checkpoint and the
    config is set for inference as the published numbers were measured: a router model
    uses the threshold selected on validation by the producing run, and a router stage's
    ``MODEL.ROUTER.TRAIN`` is off. ``download_kwargs``: as for :func:`download`.
    """
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file(name))
    if trained:
        entry = load_manifest(download_kwargs.get("manifest")).get(name)
        cfg.merge_from_list(
            inference_overrides(
                download(name, **download_kwargs), entry.metrics.get("router_threshold")
            )
        )
    assert_cfg(cfg)
    return cfg


def inference_overrides(weights: str, router_threshold: Optional[float] = None) -> List[str]:
    """``KEY VALUE`` overrides that evaluate ``weights`` with a packaged training config:
    no teacher (only training distils), no router training (a router stage's config
    trains it), and the published router threshold when one is given."""
    opts = [
        "MODEL.WEIGHTS",
        weights,
        "MODEL.ROUTER.TRAIN",
        "False",
        "MODEL.TEACHER.CONFIG_FILE",
        "",
        "MODEL.TEACHER.WEIGHTS",
        "",
    ]
    if router_threshold is not None:
        opts += ["MODEL.ROUTER.THRESHOLD", str(router_threshold)]
    return opts


def get(
    name: str,
    trained: bool = False,
    device: Optional[str] = None,
    class_counts: Optional[Sequence[int]] = None,
    **download_kwargs,
) -> nn.Module:
    """Build the model of the packaged config ``name``, in eval mode.

    Args:
        name: config path relative to ``configs/``, e.g.
            ``"FashionMNIST-LT/ride_dive_4e_r32.yaml"``.
        trained: load the published checkpoint (downloaded, verified and cached).
        device: ``"cpu"``, ``"cuda"``...; None keeps the config's ``MODEL.DEVICE``.
        class_counts: training images per class, needed by configs whose class count
            comes from the data; a trained entry's own counts are used by default.
        download_kwargs: ``base_url``, ``cache``, ``progress``, ``manifest``.

    Raises:
        ConfigError / ManifestError: unknown config or entry.
        DownloadError: the checkpoint cannot be fetched or fails verification.
        CheckpointError / CheckpointMismatchError: unreadable or non-matching weights.
    """
    from ..checkpoint import load_trained_model
    from ..modeling import build_model

    cfg = get_config(name, trained=trained, **download_kwargs)
    if device is not None:
        cfg.merge_from_list(["MODEL.DEVICE", device])
    zoo = load_manifest(download_kwargs.get("manifest"))
    if class_counts is None and name in zoo:
        class_counts = zoo.get(name).class_counts
    if cfg.MODEL.NUM_CLASSES <= 0 and not class_counts:
        raise ConfigError(
            f"'{name}' takes its number of classes from the data: pass class_counts "
            "(training images per class)"
        )
    if trained:
        return load_trained_model(cfg, class_counts)
    return build_model(cfg, class_counts=class_counts).eval()
