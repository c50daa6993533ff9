"""Registries and ``build_*``: every backbone, head and loss of tests/registry_names.py builds
from a tiny config and runs."""

import pytest
import torch

from ride_dive.config import ConfigError, get_cfg
from ride_dive.modeling import (
    BACKBONE_REGISTRY,
    HEAD_REGISTRY,
    LOSS_REGISTRY,
    META_ARCH_REGISTRY,
    build_backbone,
    build_model,
    resolve_device,
)
from ride_dive.modeling.teacher import FrozenTeacher
from tests.registry_names import REGISTERED_NAMES

COUNTS = [30, 10, 3]
NUM_EXPERTS = 2
MULTI_EXPERT_BACKBONES = {
    "RIDEResNet32",
    "RIDEResNet50",
    "RIDEResNeXt50",
    "RIDETimmBackbone",
    "RIDETorchvisionBackbone",
}
# Library trunks: a tiny architecture each (timm's test models), 3-channel 32-pixel input.
LIBRARY_ARCH = {
    "TimmBackbone": "test_vit",
    "RIDETimmBackbone": "test_vit",
    "TorchvisionBackbone": "resnet18",
    "RIDETorchvisionBackbone": "resnet18",
}
# The losses over all experts' logits (RIDE), those that distil from a teacher (DiVE) and
# the plain single-head ones; every loss of the table is in exactly one group.
EXPERT_LOSSES = {"RIDELoss"}
DISTILL_LOSSES = {"DiVELoss"}
SINGLE_HEAD_LOSSES = REGISTERED_NAMES["LOSS"] - EXPERT_LOSSES - DISTILL_LOSSES
EVALUATION_ONLY_HEADS = {"NCMHead"}
IMAGES, LABELS = (4, 3, 8, 8), torch.tensor([0, 1, 2, 0])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from a second intra-op thread, and on a busy machine its
    spin-waits make every op many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "registry",
    [META_ARCH_REGISTRY, BACKBONE_REGISTRY, HEAD_REGISTRY, LOSS_REGISTRY],
    ids=lambda r: r._name,
)
def test_every_name_is_registered_under_its_class_name(registry):
    registered = dict(registry)
    assert set(registered) == REGISTERED_NAMES[registry._name]
    for name, obj in registered.items():
        assert obj.__name__ == name


def test_the_loss_and_head_groups_are_real():
    assert SINGLE_HEAD_LOSSES and EXPERT_LOSSES | DISTILL_LOSSES <= REGISTERED_NAMES["LOSS"]
    assert EVALUATION_ONLY_HEADS <= REGISTERED_NAMES["HEAD"]
    assert {
        n for n, cls in HEAD_REGISTRY if getattr(cls, "evaluation_only", False)
    } == EVALUATION_ONLY_HEADS
    assert {
        n for n, cls in LOSS_REGISTRY if getattr(cls, "takes_expert_logits", False)
    } == EXPERT_LOSSES
    assert {
        n for n, cls in LOSS_REGISTRY if getattr(cls, "takes_teacher_logits", False) is True
    } == DISTILL_LOSSES


@pytest.mark.parametrize("name", sorted(REGISTERED_NAMES["BACKBONE"]))
def test_every_backbone_builds_from_config(model_cfg, name):
    model_cfg.MODEL.BACKBONE.NAME = name
    model_cfg.MODEL.BACKBONE.IN_CHANNELS = 1
    model_cfg.MODEL.RIDE.NUM_EXPERTS = NUM_EXPERTS
    shape = (2, 1, 20, 20)
    if name in LIBRARY_ARCH:
        if "Timm" in name:
            pytest.importorskip("timm", reason="timm not installed: pip install 'ride_dive[timm]'")
        model_cfg.MODEL.BACKBONE.ARCH = LIBRARY_ARCH[name]
        model_cfg.MODEL.BACKBONE.IN_CHANNELS = 3
        model_cfg.MODEL.BACKBONE.IMG_SIZE = 32 if "vit" in LIBRARY_ARCH[name] else 0
        model_cfg.MODEL.RIDE.EXPERT_STAGES = 1
        shape = (2, 3, 32, 32)
    backbone = build_backbone(model_cfg).eval()
    with torch.no_grad():
        out = backbone(torch.randn(*shape))
    if name in MULTI_EXPERT_BACKBONES:
        assert out.shape == (NUM_EXPERTS, 2, backbone.out_features)
    else:
        assert out.shape == (2, backbone.out_features)
    assert torch.isfinite(out).all()


def _teacher():
    """A randomly initialised single-head model with the student's classes."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.WIDTH_MULT = 0.25
    cfg.MODEL.DEVICE = "cpu"
    return FrozenTeacher(build_model(cfg, COUNTS))


def _configure(cfg, head, loss, base_loss="BalancedSoftmaxLoss"):
    cfg.MODEL.HEAD.NAME = head
    cfg.MODEL.LOSS.NAME = loss
    cfg.MODEL.LOSS.DRW_EPOCH = 0
    if loss in EXPERT_LOSSES:  # a loss over every expert: the RIDE meta-architecture
        cfg.MODEL.META_ARCHITECTURE = "RIDE"
        cfg.MODEL.BACKBONE.NAME = "RIDEResNet32"
        cfg.MODEL.RIDE.NUM_EXPERTS = NUM_EXPERTS
        cfg.MODEL.LOSS.RIDE.BASE_LOSS = base_loss


def _expected_terms(loss, base_loss="BalancedSoftmaxLoss"):
    if loss in DISTILL_LOSSES:
        return {"loss_cls", "loss_distill"}
    if loss in EXPERT_LOSSES:
        per_expert = {"loss_cls", "loss_distill"} if base_loss in DISTILL_LOSSES else {"loss_base"}
        return {f"{t}_e{i}" for t in per_expert | {"loss_div"} for i in range(NUM_EXPERTS)}
    return {"loss_cls"}


def _train_and_eval(model, loss, base_loss="BalancedSoftmaxLoss"):
    if model.needs_teacher:
        model.attach_teacher(_teacher())
    images = torch.randn(*IMAGES)
    model.train()
    terms = model(images, LABELS)
    assert set(terms) == _expected_terms(loss, base_loss)
    total = sum(terms.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        out = model(images)
    logits = out["logits"] if isinstance(out, dict) else out
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()


@pytest.mark.parametrize("head", sorted(REGISTERED_NAMES["HEAD"]))
@pytest.mark.parametrize("loss", sorted(REGISTERED_NAMES["LOSS"]))
def test_every_head_and_loss_combination_builds_and_runs(model_cfg, head, loss):
    _configure(model_cfg, head, loss)
    if head in EVALUATION_ONLY_HEADS and loss in EXPERT_LOSSES:
        with pytest.raises(ConfigError, match="single-head models"):
            build_model(model_cfg, COUNTS)
        return
    model = build_model(model_cfg, COUNTS)
    assert type(model).__name__ == model_cfg.MODEL.META_ARCHITECTURE
    assert model.needs_teacher == (loss in DISTILL_LOSSES)
    if head not in EVALUATION_ONLY_HEADS:
        _train_and_eval(model, loss)
        return
    # NCM: nothing to train; fitted on training features, then logits = -||g(x) - mu_c||^2.
    images = torch.randn(*IMAGES)
    with pytest.raises(RuntimeError, match="evaluation-only"):
        model.train()(images, LABELS)
    model.eval()
    with pytest.raises(RuntimeError, match="must run before evaluation"):
        model(images)
    with torch.no_grad():
        feats = model.extract_features(images)
        model.head.fit(feats, LABELS)
        logits = model(images)
    assert logits.shape == (4, 3)
    # Samples 1 and 2 are alone in their class: their distance to their own mean is 0.
    assert logits[1, 1].item() == pytest.approx(0.0, abs=1e-5)
    assert logits[2, 2].item() == pytest.approx(0.0, abs=1e-5)
    assert logits.argmax(dim=1)[1:3].tolist() == [1, 2]


@pytest.mark.parametrize("base_loss", sorted(SINGLE_HEAD_LOSSES | DISTILL_LOSSES))
def test_ride_loss_builds_over_every_per_expert_loss(model_cfg, base_loss):
    _configure(model_cfg, "CosineHead", "RIDELoss", base_loss=base_loss)
    model = build_model(model_cfg, COUNTS)
    assert type(model.loss.base_loss).__name__ == base_loss
    assert model.needs_teacher == (base_loss in DISTILL_LOSSES)
    _train_and_eval(model, "RIDELoss", base_loss)


@pytest.mark.parametrize(
    "key, attr",
    [
        ("MODEL.META_ARCHITECTURE", "META_ARCHITECTURE"),
        ("MODEL.BACKBONE.NAME", "BACKBONE"),
        ("MODEL.HEAD.NAME", "HEAD"),
        ("MODEL.LOSS.NAME", "LOSS"),
    ],
)
def test_unknown_names_are_config_errors_naming_the_key(model_cfg, key, attr):
    node = model_cfg.MODEL
    if attr == "META_ARCHITECTURE":
        node.META_ARCHITECTURE = "Clasifier"
    else:
        node[attr].NAME = "Nope"
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_model(model_cfg, COUNTS)


def test_channels_last(model_cfg):
    model_cfg.MODEL.CHANNELS_LAST = True
    model = build_model(model_cfg, COUNTS)
    assert model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert model(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))["loss_cls"].isfinite()


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="MODEL.DEVICE"):
        resolve_device("tpu-ish")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="not available"):
        resolve_device("cuda")
