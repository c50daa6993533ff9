"""Checkpoints of classifier-balancing (Decoupling; Kang et al. 2020,
``facebookresearch/classifier-balancing``).

``final_model_checkpoint.pth`` is ``{"epoch", "best_epoch", "state_dict_best", "best_acc",
"centroids"}`` and ``latest_model_checkpoint.pth`` ``{"epoch", "state_dict"}``; both weight
entries are ``{"feat_model": ..., "classifier": ...}``, each network inside ``DataParallel``
(prefix ``module.``). The files of that era are usually in the pre-1.6 (non-zip) format.

- ``feat_model``: torchvision-style ``ResNet``/``ResNext`` (``conv1``, ``bn1``,
  ``layer1``..``layer4``, stride on the 3x3 convolution, ``downsample`` projections), the
  module names of ride_dive's ``ResNet50``/``ResNeXt50``/``ResNet152``. Its optional
  ``fc_add`` (use_fc) and ``modulatedatt`` (self attention) layers have no equivalent.
- ``classifier``: ``DotProductClassifier`` stores ``fc.weight``/``fc.bias`` (-> ``LinearHead``
  ``head.fc``); ``TauNormClassifier`` (the LWS stage) adds ``scales`` and computes
  ``fc(x) * scales`` (-> ``LWSHead``). ``CosNormClassifier`` (scaled ``|x|/(1+|x|)``
  squashing) and OLTR's ``MetaEmbeddingClassifier`` compute functions no ride_dive head
  does; ``KNNClassifier`` keeps its centroids outside the state dict (ride_dive's
  ``NCMHead`` fits them at evaluation). ``centroids`` (OLTR's memory) is not used.
"""

from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from ...config import ConfigError
from ...modeling.heads import LinearHead, LWSHead, NCMHead
from ..model_state import CheckpointMismatchError, strip_prefix
from .common import Parsed, indices, packaged_config, plain_value

NAME = "decoupling"
TITLE = "classifier-balancing (Decoupling, facebookresearch/classifier-balancing)"

# (blocks in stage 3, grouped 3x3) -> ride_dive backbone with the same layers and names.
_BACKBONES = {(6, False): "ResNet50", (6, True): "ResNeXt50", (36, False): "ResNet152"}
_DEPTHS = {6: 50, 23: 101, 36: 152}


def _networks(obj: Any) -> Optional[Mapping]:
    if not isinstance(obj, Mapping):
        return None
    for key in ("state_dict_best", "state_dict"):
        nets = obj.get(key)
        if isinstance(nets, Mapping) and isinstance(nets.get("feat_model"), Mapping):
            return nets
    return None


def matches(obj: Any) -> bool:
    """Whether ``obj`` is a Decoupling file (``state_dict_best``/``state_dict`` holding
    ``feat_model``)."""
    return _networks(obj) is not None


def parse(obj: Any) -> Parsed:
    """The backbone and classifier weights and facts of a loaded file."""
    nets = _networks(obj)
    feat = strip_prefix(dict(nets["feat_model"]), "module.")
    clf = strip_prefix(dict(nets.get("classifier") or {}), "module.")
    num_classes = clf["fc.weight"].shape[0] if "fc.weight" in clf else None
    info = {key: plain_value(obj.get(key)) for key in ("epoch", "best_epoch", "best_acc")}
    info["weights_entry"] = "state_dict_best" if "state_dict_best" in obj else "state_dict"
    info["classifier"] = (
        "TauNormClassifier (LWS)"
        if "scales" in clf
        else "DotProductClassifier"
        if "fc.weight" in clf
        else "none"
        if not clf
        else "other"
    )
    extra = [str(k) for k in obj if k != info["weights_entry"]]
    notes = (
        [
            f"entries {', '.join(extra)} not converted (training records; 'centroids' "
            "belongs to OLTR's memory and feature loss)"
        ]
        if extra
        else []
    )
    return Parsed({"feat_model": feat, "classifier": clf}, num_classes, info, notes)


def _architecture(feat: Mapping) -> Tuple[int, int]:
    """``(blocks in stage 3, groups of the 3x3 convolutions)`` of a bottleneck network."""
    blocks = len(indices(feat, r"^layer3\.(\d+)\."))
    return blocks, feat["layer1.0.conv1.weight"].shape[0] // feat["layer1.0.conv2.weight"].shape[1]


def describe_file(parsed: Parsed) -> str:
    """``a Decoupling ResNeXt-50 with a DotProductClassifier``, for messages."""
    feat = parsed.weights["feat_model"]
    if "layer1.0.conv3.weight" not in feat:
        return "a Decoupling ResNet-10"
    blocks, groups = _architecture(feat)
    net = f"{'ResNeXt' if groups > 1 else 'ResNet'}-{_DEPTHS.get(blocks, '?')}"
    return f"a Decoupling {net} with a {parsed.info['classifier']} classifier"


def suggest_config(parsed: Parsed) -> Optional[Tuple[str, List[str]]]:
    """A packaged config of the file's architecture and the overrides it needs, as
    ``("configs/...yaml", [KEY, VALUE, ...])``, or None (no ride_dive backbone for it).

    ResNeXt files get an ImageNet-LT config, ResNet ones an iNaturalist config; the
    classifier picks cRT (dot product), LWS or NCM (none).
    """
    feat = parsed.weights["feat_model"]
    if "layer1.0.conv3.weight" not in feat:
        return None
    blocks, groups = _architecture(feat)
    backbone = _BACKBONES.get((blocks, groups > 1))
    if backbone is None:
        return None
    folder, suffix = ("ImageNet-LT", "x50") if groups > 1 else ("iNat18", "r50")
    clf = parsed.weights["classifier"]
    kind = "lws" if "scales" in clf else "crt" if "fc.weight" in clf else "ncm"
    wanted: Dict[str, Any] = {"MODEL.BACKBONE.NAME": backbone}
    if kind != "ncm":
        wanted["MODEL.HEAD.BIAS"] = "fc.bias" in clf
    return packaged_config(folder, [f"{kind}_{suffix}"], wanted)


def _check_backbone(feat: Mapping, model: nn.Module, info: Dict[str, Any]) -> None:
    extra = sorted({k.split(".")[0] for k in feat if k.startswith(("fc_add.", "modulatedatt."))})
    if extra:
        raise CheckpointMismatchError(
            f"The file's feature model has {' and '.join(extra)} layers (use_fc / "
            "use_modulatedatt of the reference code), which no ride_dive backbone has"
        )
    if "layer1.0.conv3.weight" not in feat:
        raise CheckpointMismatchError(
            "The file's feature model is built of BasicBlocks (ResNet-10), which has no "
            "ride_dive backbone; ResNet50, ResNeXt50 and ResNet152 are supported"
        )
    blocks, groups = _architecture(feat)
    info.update(depth=_DEPTHS.get(blocks), groups=groups)
    ours = model.state_dict()
    our_blocks = len(indices(ours, r"^backbone\.layer3\.(\d+)\."))
    our_groups = (
        ours["backbone.layer1.0.conv1.weight"].shape[0]
        // ours["backbone.layer1.0.conv2.weight"].shape[1]
    )
    if (blocks, groups) == (our_blocks, our_groups):
        return
    name = _BACKBONES.get((blocks, groups > 1))
    what = f"{'ResNeXt' if groups > 1 else 'ResNet'}-{_DEPTHS.get(blocks, '?')}"
    if name is None:
        raise CheckpointMismatchError(
            f"The file holds a {what}, which has no ride_dive "
            "backbone (ResNet50, ResNeXt50, ResNet152 are supported)"
        )
    raise ConfigError(
        f"The file holds a {what} ({groups} group(s) in the 3x3 convolutions) but "
        f"MODEL.BACKBONE.NAME is '{type(model.backbone).__name__}': set it to "
        f"'{name}'"
    )


def _check_head(clf: Mapping, model: nn.Module, notes: List[str]) -> None:
    head = model.head
    keys = set(clf)
    if isinstance(head, NCMHead):
        notes.append("classifier weights not used: NCMHead fits its class means at evaluation")
        return
    if keys == {"weight"}:
        raise CheckpointMismatchError(
            "The file's classifier is a CosNormClassifier (|x|/(1+|x|) squashing), which no "
            "ride_dive head computes"
        )
    if not keys:
        raise ConfigError(
            "The file has no classifier weights (a KNNClassifier keeps its "
            "centroids outside the state dict): set MODEL.HEAD.NAME 'NCMHead'"
        )
    if not keys <= {"fc.weight", "fc.bias", "scales"}:
        raise CheckpointMismatchError(
            f"The file's classifier ({', '.join(sorted(keys)[:6])}) is not a dot-product or "
            "LWS classifier (e.g. OLTR's MetaEmbeddingClassifier); it cannot be converted"
        )
    if "scales" in keys and not isinstance(head, LWSHead):
        raise ConfigError(
            f"The file's classifier is LWS (TauNormClassifier, fc(x) * scales) "
            f"but MODEL.HEAD.NAME is '{type(head).__name__}': set it to 'LWSHead'"
        )
    if not isinstance(head, (LinearHead, LWSHead)):
        raise ConfigError(
            f"The file's classifier is linear but MODEL.HEAD.NAME is "
            f"'{type(head).__name__}': set it to 'LinearHead'"
        )
    if "fc.bias" not in keys and head.fc.bias is not None:
        raise ConfigError("The file's classifier has no bias: set MODEL.HEAD.BIAS False")
    if model.backbone.normalize_features:
        raise ConfigError(
            "The file's classifier reads unnormalised features: set "
            "MODEL.BACKBONE.NORMALIZE_FEATURES False"
        )


def convert(
    parsed: Parsed, model: nn.Module, drop_router: bool = False
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Map the file's two networks onto ``model`` (``backbone.*``, ``head.*``).

    ``drop_router`` is accepted for the common importer interface; these files have none.

    Raises:
        ConfigError: the config builds another backbone or head than the file's.
        CheckpointMismatchError: parts of the file that have no ride_dive equivalent.
    """
    if type(model).__name__ != "Classifier":
        raise ConfigError(
            f"A Decoupling checkpoint needs a single-head config "
            f"(MODEL.META_ARCHITECTURE 'Classifier', e.g. "
            f"configs/ImageNet-LT/crt_x50.yaml), got '{type(model).__name__}'"
        )
    feat, clf = parsed.weights["feat_model"], parsed.weights["classifier"]
    _check_backbone(feat, model, parsed.info)
    _check_head(clf, model, parsed.notes)
    state = OrderedDict(("backbone." + k, v) for k, v in feat.items())
    if not isinstance(model.head, NCMHead):
        state.update(("head." + k, v) for k, v in clf.items())
        if "scales" not in clf and isinstance(model.head, LWSHead):
            parsed.notes.append(
                "dot-product classifier loaded into LWSHead with scales 1 (the same logits)"
            )
    return state, parsed.notes
