"""Checkpoints of the original RIDE code (Wang et al. 2021,
``frank-xwang/RIDE-LongTailRecognition``).

Its ``BaseTrainer`` saves ``{"arch", "epoch", "state_dict", "optimizer", "monitor_best",
"config"}``; ``config`` is a pickled ``parse_config.ConfigParser`` (read here as an inert
stand-in, see ``foreign_pickle``), ``state_dict`` the weights of ``Model`` (prefix
``backbone.``), usually inside ``DataParallel`` (prefix ``module.``). Its networks:

- ``ResNet_s`` (CIFAR ResNet-32): ``conv1``, ``bn1``, ``layer1`` shared; ``layer2s.<e>``,
  ``layer3s.<e>`` per expert; option-A (parameter-free) shortcuts.
- ``ResNet``/``ResNext`` (ResNet-50, ResNeXt-50): ``conv1``...``layer2`` shared;
  ``layer3s.<e>``, ``layer4s.<e>`` per expert; ``downsample`` projections.
- ``linears.<e>``: ``nn.Linear`` (``use_norm`` false; logits are not rescaled) or
  ``NormedLinear`` (weight stored ``(D, C)``; logits ``s * cos``, s = 30 by default).
- Expert assignment (the ``*EAModel`` variants): ``expert_help_pred_hidden_fcs.<k>`` (per
  router, ``Linear(D, 16)``) and ``expert_help_pred_fc`` (shared ``Linear(K + 16, 1)`` over
  ``[top-K mean logits, hidden]``).

ride_dive's ``RIDE`` uses the same module names for the backbone (``backbone.*``); heads
become ``heads.<e>.*`` (a cosine head stores ``(C, D)``), routers ``router.*``. The router
computes the same function (L2-normalised pooled feature -> hidden + ReLU, top-K sorted
mean logits, one shared output layer) but concatenates ``[hidden, top-K]``, so the output
layer's columns are swapped on conversion. The whole ensemble's logits are the mean of the
experts' in both, and early exit stops a sample when the router's probability is <= the
threshold (the reference hard-codes 0.5; ours is ``MODEL.ROUTER.THRESHOLD``).
"""

import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from ...config import ConfigError
from ...modeling.heads import CosineHead, LinearHead, LWSHead
from ..model_state import CheckpointMismatchError, strip_prefix
from .common import Parsed, indices, is_state_dict, packaged_config, plain_value
from .foreign_pickle import foreign_state

NAME = "ride"
TITLE = "RIDE (frank-xwang/RIDE-LongTailRecognition)"

_EXPERT_STAGE = re.compile(r"^(layer\d)s\.(\d+)\.")
_TRUNK = re.compile(r"^(conv1|bn1|layer\d)\.")
_HIDDEN = "expert_help_pred_hidden_fcs."
_OUT = "expert_help_pred_fc."
_SEPARATE_OUT = "expert_help_pred_fcs."
_DEFAULT_SCALE = 30.0  # ``s`` of ResNet_s / ResNet / ResNext when the config leaves it out


def _weights(obj: Any) -> Mapping:
    sd = obj.get("state_dict") if isinstance(obj, Mapping) else None
    if not is_state_dict(sd):
        sd = obj  # also accept a bare RIDE state dict
    if not is_state_dict(sd):
        return {}
    return strip_prefix(strip_prefix(sd, "module."), "backbone.")


def matches(obj: Any) -> bool:
    """Whether ``obj`` holds RIDE weights (per-expert ``layer<k>s.<e>`` and ``linears.<e>``)."""
    keys = list(_weights(obj))
    return any(k.startswith("linears.") for k in keys) and any(_EXPERT_STAGE.match(k) for k in keys)


def _arch(obj: Any) -> Dict[str, Any]:
    """``config["arch"]`` of the pickled ConfigParser (``{"type", "args"}``), or {}."""
    state = foreign_state(obj.get("config")) if isinstance(obj, Mapping) else None
    config = state.get("_config") if isinstance(state, Mapping) else None
    arch = config.get("arch") if isinstance(config, Mapping) else None
    return arch if isinstance(arch, Mapping) else {}


def parse(obj: Any) -> Parsed:
    """The RIDE weights and facts of a loaded file (``matches(obj)`` must hold)."""
    sd = _weights(obj)
    experts = indices(sd, r"^linears\.(\d+)\.")
    if experts != list(range(len(experts))):
        raise CheckpointMismatchError(f"The RIDE classifiers are numbered {experts}, not 0..E-1")
    normed = "linears.0.bias" not in sd
    weight = sd["linears.0.weight"]
    arch = _arch(obj)
    args = arch.get("args") if isinstance(arch.get("args"), Mapping) else {}
    info = {
        "num_experts": len(experts),
        "classifier": "NormedLinear" if normed else "Linear",
        "arch": plain_value(arch.get("type")) or plain_value(obj.get("arch")),
        "epoch": plain_value(obj.get("epoch")),
    }
    notes = []
    extra = [] if is_state_dict(obj) else [str(k) for k in obj if k != "state_dict"]
    if extra:
        notes.append(
            f"entries {', '.join(extra)} not converted (training state of the "
            "original code; a pickled config is read as inert data only)"
        )
    if normed:
        scale = args.get("s", _DEFAULT_SCALE)
        info["scale"] = float(scale) if isinstance(scale, (int, float)) else None
        if not args:
            notes.append(
                f"the file's config does not give the cosine scale s; assumed the "
                f"reference default {_DEFAULT_SCALE:g}"
            )
    if args.get("use_experts") not in (None, ""):
        notes.append(
            f"the original config evaluates only experts {args['use_experts']!r}; "
            "the converted model averages all experts"
        )
    num_classes = weight.shape[1] if normed else weight.shape[0]
    return Parsed({"model": sd}, int(num_classes), info, notes)


def _family(keys) -> str:
    return "cifar" if any(k.startswith("layer2s.") for k in keys) else "imagenet"


def _groups(state: Mapping, prefix: str) -> int:
    """Groups of a bottleneck's 3x3 convolution, from its weight shapes."""
    return state[prefix + "conv1.weight"].shape[0] // state[prefix + "conv2.weight"].shape[1]


def describe_file(parsed: Parsed) -> str:
    """``a RIDE CIFAR ResNet-32 with 3 experts and routers``, for messages."""
    sd = parsed.weights["model"]
    if _family(sd) == "cifar":
        net = "CIFAR ResNet-32"
    elif "layer1.0.conv3.weight" in sd:
        net = "ResNeXt-50" if _groups(sd, "layer1.0.") > 1 else "ResNet-50"
    else:
        net = "ResNet-10"
    router = " and routers" if any(k.startswith((_HIDDEN, _OUT)) for k in sd) else ""
    return f"a RIDE {net} with {parsed.info['num_experts']} experts{router}"


def suggest_config(parsed: Parsed) -> Optional[Tuple[str, List[str]]]:
    """A packaged config of the file's architecture and the overrides it needs, as
    ``("configs/...yaml", [KEY, VALUE, ...])``, or None (no config of that family).

    The dataset folder follows the network and the class count (CIFAR-10/100 for the
    ResNet-32, ImageNet-LT for the ResNeXt-50, iNaturalist for the ResNet-50); the number
    of experts, the router and the classifier type are set by overrides where no packaged
    config has them. Widths are not guessed: the converter names them if they differ.
    """
    sd = parsed.weights["model"]
    experts = parsed.info["num_experts"]
    if _family(sd) == "cifar":
        folder = "CIFAR10-LT" if parsed.num_classes == 10 else "CIFAR100-LT"
        stem = "ride_{}e_r32_if100"
    elif "layer1.0.conv3.weight" not in sd:
        return None  # ResNet-10: no ride_dive backbone
    elif _groups(sd, "layer1.0.") > 1:
        folder, stem = "ImageNet-LT", "ride_{}e_x50"
    else:
        folder, stem = "iNat18", "ride_{}e_r50"
    router = any(k.startswith((_HIDDEN, _OUT)) for k in sd)
    names = [stem.format(experts), stem.format(4)]
    if router:
        names = [names[0] + "_router", names[1] + "_router"] + names
    wanted: Dict[str, Any] = {"MODEL.RIDE.NUM_EXPERTS": experts, "MODEL.ROUTER.ENABLED": router}
    if router and _HIDDEN + "0.weight" in sd and _OUT + "weight" in sd:
        hidden = sd[_HIDDEN + "0.weight"].shape[0]
        wanted["MODEL.ROUTER.HIDDEN_DIM"] = int(hidden)
        wanted["MODEL.ROUTER.TOP_K"] = int(sd[_OUT + "weight"].shape[1] - hidden)
    if parsed.info["classifier"] == "NormedLinear":
        wanted["MODEL.HEAD.NAME"] = "CosineHead"
        if parsed.info.get("scale") is not None:
            wanted["MODEL.HEAD.COSINE_SCALE"] = float(parsed.info["scale"])
    else:
        wanted["MODEL.HEAD.NAME"] = "LinearHead"
        wanted["MODEL.BACKBONE.NORMALIZE_FEATURES"] = False
    return packaged_config(folder, names, wanted)


def _check_architecture(sd: Mapping, model: nn.Module, info: Dict[str, Any]) -> None:
    ours = model.state_dict()
    backbone = type(model.backbone).__name__
    family = _family(sd)
    if family == "cifar" and backbone != "RIDEResNet32":
        raise ConfigError(
            f"The file holds a RIDE CIFAR ResNet-32 (layer2s/layer3s per expert) "
            f"but MODEL.BACKBONE.NAME is '{backbone}': set it to 'RIDEResNet32'"
        )
    if family == "imagenet":
        if "layer1.0.conv3.weight" not in sd:
            raise CheckpointMismatchError(
                "The file holds a RIDE network of BasicBlocks (ResNet-10), which has no "
                "ride_dive backbone; RIDEResNet50 and RIDEResNeXt50 are bottleneck networks"
            )
        if any(k.startswith("layer3.") for k in sd):
            raise CheckpointMismatchError(
                "The file's experts share layer3 (share_layer3 of the expert-assignment "
                "model); ride_dive's RIDE experts each own stages 3 and 4, so it cannot be "
                "converted"
            )
        if backbone == "RIDEResNet32":
            raise ConfigError(
                "The file holds a RIDE ResNet-50/ResNeXt-50 (layer3s/layer4s per "
                "expert) but MODEL.BACKBONE.NAME is 'RIDEResNet32': set it to "
                "'RIDEResNeXt50' or 'RIDEResNet50'"
            )
        theirs, mine = _groups(sd, "layer1.0."), _groups(ours, "backbone.layer1.0.")
        info["groups"] = theirs
        if theirs != mine:
            name = "RIDEResNeXt50" if theirs > 1 else "RIDEResNet50"
            raise ConfigError(
                f"The file's bottlenecks use {theirs} group(s) in their 3x3 convolutions, the "
                f"config builds {mine}: set MODEL.BACKBONE.NAME '{name}' (and MODEL.RESNET."
                f"GROUPS / WIDTH_PER_GROUP if not 32x4d)"
            )
    file_conv = any(".shortcut." in k for k in sd)
    our_conv = any(".shortcut." in k for k in ours)
    if file_conv != our_conv:
        have, need = ("1x1-convolution (option B)", "parameter-free zero-padding (option A)")
        if our_conv:
            have, need = need, have
        raise CheckpointMismatchError(
            f"The file's CIFAR ResNet uses {have} shortcuts but {backbone} builds {need} "
            f"shortcuts (the reference RIDE/LDAM code uses option A), so the residual "
            f"connections differ and these weights cannot be converted"
        )


def _check_heads(parsed: Parsed, model: nn.Module) -> None:
    head = model.heads[0]
    normed = parsed.info["classifier"] == "NormedLinear"
    if normed and not isinstance(head, CosineHead):
        raise ConfigError(
            f"The file's classifiers are RIDE NormedLinear (cosine, use_norm "
            f"true) but MODEL.HEAD.NAME is '{type(head).__name__}': set it to "
            f"'CosineHead'"
        )
    if not normed and not isinstance(head, (LinearHead, LWSHead)):
        raise ConfigError(
            f"The file's classifiers are nn.Linear (use_norm false) but "
            f"MODEL.HEAD.NAME is '{type(head).__name__}': set it to 'LinearHead'"
        )
    scale = parsed.info.get("scale")
    if normed and scale is not None and abs(head.scale - scale) > 1e-6:
        raise ConfigError(
            f"The file's cosine classifiers scale by s = {scale:g} but "
            f"MODEL.HEAD.COSINE_SCALE is {head.scale:g}: set it to {scale:g}"
        )
    if not normed and model.backbone.normalize_features:
        raise ConfigError(
            "The file's linear classifiers read unnormalised features: set "
            "MODEL.BACKBONE.NORMALIZE_FEATURES False"
        )


def _router(
    sd: Mapping, model: nn.Module, parsed: Parsed, drop_router: bool
) -> Dict[str, torch.Tensor]:
    has = any(k.startswith((_HIDDEN, _OUT, _SEPARATE_OUT)) for k in sd)
    parsed.info["router"] = has
    if not has:
        if model.router is not None:
            raise ConfigError(
                "The file has no expert-assignment (router) weights, but "
                "MODEL.ROUTER.ENABLED is True: set it to False (to train "
                "routers on it, convert with the stage-1 config and give the "
                "result to the router stage's MODEL.WEIGHTS)"
            )
        return {}
    if any(k.startswith(_SEPARATE_OUT) for k in sd):
        raise CheckpointMismatchError(
            "The file's routers each have their own output layer (share_expert_help_pred_fc "
            "false); ride_dive's routers share one, so they cannot be converted. Convert with "
            "MODEL.ROUTER.ENABLED False to use the experts without early exit"
        )
    if model.router is None:
        if not drop_router:
            # Silently dropping them would turn a model with early exit into the full
            # ensemble, with other numbers than the file's.
            raise ConfigError(
                "The file has expert-assignment (router) weights but MODEL.ROUTER.ENABLED "
                "is False, so they would be dropped and every expert would always run: "
                "convert with a router config (MODEL.ROUTER.ENABLED True) to keep the early "
                "exit, or pass --drop-router (drop_router=True) to convert the experts alone"
            )
        parsed.notes.append(
            "expert-assignment (router) weights not converted (--drop-router): "
            "MODEL.ROUTER.ENABLED is False, so every expert runs"
        )
        return {}
    hidden = sd[_HIDDEN + "0.weight"].shape[0]
    top_k = sd[_OUT + "weight"].shape[1] - hidden
    parsed.info["router_top_k"] = top_k
    if hidden != model.router.hidden[0].out_features:
        raise ConfigError(
            f"The file's routers have {hidden} hidden units: set MODEL.ROUTER.HIDDEN_DIM {hidden}"
        )
    if top_k != model.router.top_k:
        raise ConfigError(
            f"The file's routers read the top {top_k} mean logits "
            f"(top_choices_num) but the config uses {model.router.top_k}: set "
            f"MODEL.ROUTER.TOP_K {top_k}"
        )
    out = OrderedDict()
    for k, v in sd.items():
        if k.startswith(_HIDDEN):
            out["router.hidden." + k[len(_HIDDEN) :]] = v
    # Reference input order is [top-K, hidden]; ours is [hidden, top-K].
    w = sd[_OUT + "weight"]
    out["router.out.weight"] = torch.cat([w[:, top_k:], w[:, :top_k]], dim=1)
    out["router.out.bias"] = sd[_OUT + "bias"]
    return out


def convert(
    parsed: Parsed, model: nn.Module, drop_router: bool = False
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Map the file's weights onto ``model``'s state-dict keys.

    Args:
        parsed: what :func:`parse` read.
        model: the model of the config.
        drop_router: leave the file's routers out when the model has none (else an error).

    Raises:
        ConfigError: the config builds another architecture than the file's (experts,
            backbone, head type or scale, router settings), naming the key to set.
        CheckpointMismatchError: parts of the file that have no ride_dive equivalent.
    """
    if type(model).__name__ != "RIDE":
        raise ConfigError(
            f"A RIDE checkpoint needs a RIDE config (MODEL.META_ARCHITECTURE "
            f"'RIDE', e.g. configs/CIFAR100-LT/ride_4e_r32_if100.yaml), got "
            f"'{type(model).__name__}'"
        )
    sd = parsed.weights["model"]
    experts = parsed.info["num_experts"]
    if experts != model.num_experts:
        raise ConfigError(
            f"The file has {experts} experts but the config builds "
            f"{model.num_experts}: set MODEL.RIDE.NUM_EXPERTS {experts}"
        )
    _check_architecture(sd, model, parsed.info)
    _check_heads(parsed, model)
    state = OrderedDict()
    for k, v in sd.items():
        m = re.match(r"^linears\.(\d+)\.(weight|bias)$", k)
        if m and parsed.info["classifier"] == "NormedLinear":
            state[f"heads.{m.group(1)}.weight"] = v.t()  # NormedLinear stores (D, C)
        elif m:
            state[f"heads.{m.group(1)}.fc.{m.group(2)}"] = v
        elif _TRUNK.match(k) or _EXPERT_STAGE.match(k):
            state["backbone." + k] = v
        elif not k.startswith((_HIDDEN, _OUT)):
            state[k] = v  # unknown: the strict load names it as an unexpected key
    state.update(_router(sd, model, parsed, drop_router))
    return state, parsed.notes
