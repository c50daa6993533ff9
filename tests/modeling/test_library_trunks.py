"""timm and torchvision trunks: pretrained weights, fine-tuning controls, RIDE experts on them.

Everything runs on random weights saved by the tests themselves (no downloads), with timm's
tiny test models and torchvision's ResNet-18.
"""

import hashlib
import sys

import pytest
import torch
import torchvision
from torch import nn

from ride_dive.config import ConfigError, get_cfg
from ride_dive.modeling import build_model
from ride_dive.modeling.backbones import (
    RIDETimmBackbone,
    RIDETorchvisionBackbone,
    TimmBackbone,
    TorchvisionBackbone,
)
from ride_dive.modeling.fine_tuning import count_parameters
from ride_dive.modeling.pretrained_weights import load_into, pretrained_state_dict
from ride_dive.solver import build_optimizer

X = torch.randn(3, 3, 32, 32)


def _timm():
    return pytest.importorskip("timm", reason="timm not installed: pip install 'ride_dive[timm]'")


def _reference_vit(num_classes=7):
    """A timm test ViT with a classifier, random weights: what a pretrained file holds."""
    return _timm().create_model("test_vit", num_classes=num_classes, img_size=32).eval()


def _save(state, path):
    torch.save(state, path)
    return str(path)


def test_a_timm_file_loads_and_reproduces_the_models_features(tmp_path):
    ref = _reference_vit()
    path = _save(ref.state_dict(), tmp_path / "vit.pth")
    backbone = TimmBackbone(arch="test_vit", img_size=32, pretrained=path).eval()
    with torch.no_grad():
        expected = ref.forward_head(ref.forward_features(X), pre_logits=True)
        assert torch.equal(backbone(X), expected)
    assert backbone.out_features == expected.shape[1]
    assert backbone.input_spec.size == 32 and len(backbone.input_spec.mean) == 3


def test_the_pretrained_classifier_is_reported_as_ignored_not_unexpected(tmp_path):
    ref = _reference_vit()
    trunk = TimmBackbone(arch="test_vit", img_size=32).model
    report = load_into(trunk, ref.state_dict(), "vit.pth", classifier_prefixes=("head.",))
    assert report["ignored"] == ["head.weight", "head.bias"]
    assert report["missing"] == report["unexpected"] == report["shape_mismatch"] == []


def test_a_torchvision_file_loads_and_reproduces_the_models_features(tmp_path):
    ref = torchvision.models.resnet18(num_classes=5).eval()
    path = _save(
        {"state_dict": {"module." + k: v for k, v in ref.state_dict().items()}},
        tmp_path / "r18.pth",
    )
    backbone = TorchvisionBackbone(arch="resnet18", pretrained=path).eval()
    ref.fc = nn.Identity()
    with torch.no_grad():
        assert torch.equal(backbone(X), ref(X))
    assert backbone.out_features == 512
    assert backbone.input_spec.size == 224  # from the builder's default weights, no download


def test_safetensors_files_load(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    ref = torchvision.models.resnet18().eval()
    path = str(tmp_path / "r18.safetensors")
    safetensors.save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, path)
    backbone = TorchvisionBackbone(arch="resnet18", pretrained=path).eval()
    ref.fc = nn.Identity()
    with torch.no_grad():
        assert torch.equal(backbone(X), ref(X))


class _Payload:
    """Not a tensor: a weights-only load must refuse to build it."""


def test_bad_pretrained_files_are_config_errors_naming_the_key(tmp_path):
    state = torchvision.models.resnet18().state_dict()
    good = _save(state, tmp_path / "r18.pth")
    digest = hashlib.sha256(open(good, "rb").read()).hexdigest()
    assert pretrained_state_dict(good, digest)  # the right sha256 passes
    bad_cases = {
        "missing": (str(tmp_path / "nope.pth"), "", "no such file"),
        "sha256": (good, "0" * 64, "sha256"),
        "pickle": (
            _save({"x": _Payload()}, tmp_path / "evil.pth"),
            "",
            "nothing in the file was executed",
        ),
        "not tensors": (_save({"x": [1, 2]}, tmp_path / "list.pth"), "", "no state dict"),
    }
    for case, (path, sha, phrase) in bad_cases.items():
        with pytest.raises(ConfigError, match="MODEL.BACKBONE.PRETRAINED") as e:
            pretrained_state_dict(path, sha)
        assert phrase in str(e.value), case
    # Another architecture's weights: not one tensor fits.
    other = _save({"blocks.0.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="none of its 1 tensors fits"):
        TorchvisionBackbone(arch="resnet18", pretrained=other)


def test_unknown_hub_weights_and_architectures_are_config_errors():
    with pytest.raises(ConfigError, match="torchvision could not provide"):
        pretrained_state_dict("torchvision:ResNet50_Weights.NO_SUCH")
    with pytest.raises(ConfigError, match="Closest torchvision names: resnet50"):
        TorchvisionBackbone(arch="resnet5O")
    _timm()
    with pytest.raises(ConfigError, match="Closest timm names"):
        TimmBackbone(arch="vit_base_patch16_22")


def test_a_missing_timm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'ride_dive\[timm\]'"):
        TimmBackbone(arch="test_vit")


def _classifier_cfg(backbone, arch, **extra):
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "MODEL.DEVICE",
            "cpu",
            "MODEL.CHANNELS_LAST",
            "False",
            "MODEL.BACKBONE.NAME",
            backbone,
            "MODEL.BACKBONE.ARCH",
            arch,
            "MODEL.NUM_CLASSES",
            "4",
            "SOLVER.WEIGHT_DECAY",
            "0.1",
        ]
        + [str(x) for kv in extra.items() for x in kv]
    )
    return cfg


def test_lora_starts_as_the_model_and_trains_only_its_own_parameters(tmp_path):
    ref = _reference_vit()
    path = _save(ref.state_dict(), tmp_path / "vit.pth")
    extra = {"MODEL.BACKBONE.IMG_SIZE": 32, "MODEL.BACKBONE.PRETRAINED": path}
    plain = build_model(_classifier_cfg("TimmBackbone", "test_vit", **extra))
    lora = build_model(
        _classifier_cfg("TimmBackbone", "test_vit", **extra, **{"MODEL.LORA.RANK": 2})
    )
    lora.head.load_state_dict(plain.head.state_dict())
    plain.eval(), lora.eval()
    with torch.no_grad():
        assert torch.equal(plain(X), lora(X))  # B = 0: the same function before training
    names = [n for n, _ in lora.named_parameters()]
    assert "backbone.model.blocks.0.attn.qkv.weight" in names  # pretrained names kept
    assert "backbone.model.blocks.0.attn.qkv.lora_a.weight" in names
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable == {n for n in names if ".lora_" in n or n.startswith("head.")}
    assert count_parameters(lora, trainable_only=True) < count_parameters(lora) / 5

    before = {n: p.detach().clone() for n, p in lora.named_parameters()}
    optimizer = build_optimizer(_classifier_cfg("TimmBackbone", "test_vit"), lora)
    lora.train()
    lora(X, torch.tensor([0, 1, 2]))["loss_cls"].backward()
    optimizer.step()
    for n, p in lora.named_parameters():
        changed = not torch.equal(p, before[n])
        assert changed == (n in trainable), n  # frozen: bit-identical (weight decay too)
    assert set(lora.state_dict()) >= set(plain.state_dict())  # a LoRA checkpoint is whole


def test_freeze_patterns_freeze_by_name_and_a_typo_is_an_error():
    _timm()
    cfg = _classifier_cfg("TimmBackbone", "test_vit", **{"MODEL.BACKBONE.IMG_SIZE": 32})
    cfg.MODEL.BACKBONE.FREEZE_PATTERNS = [r"patch_embed\.", r"blocks\.[01]\."]
    model = build_model(cfg)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(
        "patch_embed." in n or ".blocks.0." in n or ".blocks.1." in n for n in frozen
    )
    assert any(".blocks.2." in n for n, p in model.named_parameters() if p.requires_grad)
    cfg.MODEL.BACKBONE.FREEZE_PATTERNS = ["patch_embedd"]
    with pytest.raises(ConfigError, match="matches no parameter"):
        build_model(cfg)


def test_layer_decay_scales_each_depth_and_the_backbone_factor():
    _timm()
    cfg = _classifier_cfg("TimmBackbone", "test_vit", **{"MODEL.BACKBONE.IMG_SIZE": 32})
    cfg.SOLVER.LAYER_DECAY, cfg.SOLVER.BACKBONE_LR_FACTOR, cfg.SOLVER.BASE_LR = 0.5, 0.1, 0.2
    model = build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    ids = model.backbone.layer_ids()
    depth = max(ids.values()) + 1
    for name, p in model.named_parameters():
        if name.startswith("backbone."):
            expected = 0.2 * 0.1 * 0.5 ** (depth - ids[name[len("backbone.") :]])
        else:
            expected = 0.2
        assert lr_of[id(p)] == pytest.approx(expected), name
    assert ids["model.cls_token"] == 0 and ids["model.blocks.0.attn.qkv.weight"] == 1
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2)  # the logged one: the heads'


def test_layer_decay_needs_a_backbone_that_numbers_its_layers():
    cfg = get_cfg()
    cfg.MODEL.DEVICE, cfg.MODEL.BACKBONE.WIDTH_MULT, cfg.MODEL.NUM_CLASSES = "cpu", 0.25, 3
    cfg.SOLVER.LAYER_DECAY = 0.7
    with pytest.raises(ConfigError, match="SOLVER.LAYER_DECAY"):
        build_optimizer(cfg, build_model(cfg))


@pytest.mark.parametrize("stages", [1, 2])
def test_ride_experts_on_a_torchvision_resnet_start_as_copies_of_its_last_stages(tmp_path, stages):
    ref = torchvision.models.resnet18().eval()
    path = _save(ref.state_dict(), tmp_path / "r18.pth")
    backbone = RIDETorchvisionBackbone(
        arch="resnet18", num_experts=3, expert_stages=stages, pretrained=path
    ).eval()
    own = ["layer1", "layer2", "layer3", "layer4"][4 - stages :]
    for e in range(3):
        for name, copy in zip(own, backbone.expert_stages(e)):
            assert copy is not getattr(ref, name)
            for (k, a), (_, b) in zip(
                copy.state_dict().items(), getattr(ref, name).state_dict().items()
            ):
                assert torch.equal(a, b), (e, name, k)
    ref.fc = nn.Identity()
    with torch.no_grad():
        out = backbone(X)
        for e in range(3):
            assert torch.equal(out[e], ref(X))
    # Parameters of an expert's copy decay like the pretrained stage they copy.
    ids = backbone.layer_ids()
    assert ids["layer4s.2.0.conv1.weight"] == ids["layer4s.0.0.conv1.weight"] > ids["conv1.weight"]


def test_ride_experts_on_a_timm_vit_own_the_last_blocks(tmp_path):
    ref = _reference_vit()
    path = _save(ref.state_dict(), tmp_path / "vit.pth")
    backbone = RIDETimmBackbone(
        arch="test_vit", img_size=32, num_experts=2, expert_stages=2, pretrained=path
    ).eval()
    depth = len(ref.blocks)
    assert len(backbone.lib.blocks) == depth - 2
    with torch.no_grad():
        expected = ref.forward_head(ref.forward_features(X), pre_logits=True)
        out = backbone(X)
        assert out.shape == (2, 3, backbone.out_features)
        for e in range(2):
            assert torch.allclose(out[e], expected, atol=1e-6)
        shared = backbone.forward_trunk(X)  # early exit: experts one at a time
        assert torch.allclose(backbone.forward_experts(shared, 1, 2)[0], expected, atol=1e-6)
    ids = backbone.layer_ids()
    assert ids["experts_own.1.m1.attn.qkv.weight"] == ids["experts_own.0.m1.attn.qkv.weight"]
    assert (
        ids["experts_own.0.m0.attn.qkv.weight"] == ids["lib.blocks.0.attn.qkv.weight"] + depth - 2
    )


def test_a_ride_model_on_a_library_trunk_trains_a_step():
    _timm()
    cfg = _classifier_cfg(
        "RIDETimmBackbone",
        "test_resnet",
        **{
            "MODEL.META_ARCHITECTURE": "RIDE",
            "MODEL.HEAD.NAME": "CosineHead",
            "MODEL.LOSS.NAME": "RIDELoss",
            "MODEL.LOSS.RIDE.BASE_LOSS": "BalancedSoftmaxLoss",
            "MODEL.RIDE.NUM_EXPERTS": 2,
        },
    )
    model = build_model(cfg, class_counts=[40, 20, 5, 2])
    losses = model(X, torch.tensor([0, 1, 3]))
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    assert model(X)["logits"].shape == (3, 4)


def test_model_weights_replace_the_pretrained_trunk(tmp_path, caplog):
    cfg = _classifier_cfg(
        "TorchvisionBackbone",
        "resnet18",
        **{"MODEL.BACKBONE.PRETRAINED": str(tmp_path / "absent.pth"), "MODEL.WEIGHTS": "w.pth"},
    )
    with caplog.at_level("INFO", logger="ride_dive"):
        build_model(cfg)  # the absent file is not even opened
    assert "MODEL.WEIGHTS w.pth replaces it" in caplog.text


def test_ride_macs_on_a_library_trunk_count_the_shared_part_once():
    """fvcore counts: E experts cost the shared stem and layer1-2 once and E copies of
    layer3-4 and heads; one expert is the plain ResNet-18 plus its cosine head."""
    from ride_dive.modeling import count_macs

    def macs(experts):
        cfg = _classifier_cfg(
            "RIDETorchvisionBackbone",
            "resnet18",
            **{
                "MODEL.META_ARCHITECTURE": "RIDE",
                "MODEL.HEAD.NAME": "CosineHead",
                "MODEL.LOSS.NAME": "RIDELoss",
                "MODEL.RIDE.NUM_EXPERTS": experts,
            },
        )
        return build_model(cfg, class_counts=[9, 5, 3, 1]).eval().inference_macs((3, 32, 32))

    one, two, three = macs(1), macs(2), macs(3)
    assert three - two == pytest.approx(two - one, rel=1e-6)
    plain = torchvision.models.resnet18()
    plain.fc = nn.Identity()
    trunk = count_macs(plain.eval(), (3, 32, 32))
    assert trunk < one < trunk * 1.01  # + the 4 x 512 cosine head
    assert two - one < trunk  # the shared stem and layer1-2 are not repeated


def test_feeding_pretrained_weights_another_input_is_a_warning(tmp_path, caplog):
    path = _save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    cfg = _classifier_cfg("TorchvisionBackbone", "resnet18", **{"MODEL.BACKBONE.PRETRAINED": path})
    with caplog.at_level("WARNING", logger="ride_dive"):
        build_model(cfg)  # the dataset's statistics, 32 pixels
    assert "INPUT.PIXEL_MEAN [0.485, 0.456, 0.406]" in caplog.text
    assert "expect 224-pixel inputs; this config feeds 32" in caplog.text
    caplog.clear()
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    cfg.INPUT.CROP_SIZE = 224
    with caplog.at_level("WARNING", logger="ride_dive"):
        build_model(cfg)
    assert "pretrained weights" not in caplog.text


@pytest.mark.parametrize(
    "library,arch",
    [
        ("timm", "test_convnext"),
        ("torchvision", "convnext_tiny"),
        ("torchvision", "efficientnet_b0"),
    ],
)
def test_ride_experts_on_staged_networks_start_as_the_pretrained_model(tmp_path, library, arch):
    """ConvNeXt (timm's stem/stages/head, torchvision's features) and EfficientNet: every
    expert computes the pretrained model's features before training."""
    if library == "timm":
        ref = _timm().create_model(arch, num_classes=0).eval()
        cls = RIDETimmBackbone
    else:
        ref = torchvision.models.get_model(arch).eval()
        ref.classifier[-1] = nn.Identity()
        cls = RIDETorchvisionBackbone
    path = _save(ref.state_dict(), tmp_path / "w.pth")
    backbone = cls(arch=arch, num_experts=2, expert_stages=2, pretrained=path).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref(x)
        out = backbone(x)
    assert out.shape == (2, 2, backbone.out_features) == (2, *expected.shape)
    for e in range(2):
        torch.testing.assert_close(out[e], expected, atol=1e-5, rtol=1e-5)
    ids = backbone.layer_ids()
    own = [n for n in ids if n.startswith("experts_own.1.")]
    assert own and all(ids[n] == ids[n.replace("experts_own.1.", "experts_own.0.")] for n in own)
