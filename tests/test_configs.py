"""Every YAML under configs/ builds (tiny width, CPU); the registries hold exactly the names of
tests/registry_names.py."""

import glob
import os

import pytest
import torch

from ride_dive.data import DATASET_REGISTRY, SAMPLER_REGISTRY
from ride_dive.engine import setup_cfg
from ride_dive.engine.pipeline import is_pipeline_file, load_pipeline
from ride_dive.modeling import build_model
from ride_dive.modeling.teacher import FrozenTeacher
from tests.conftest import ROOT
from tests.registry_names import REGISTERED_NAMES, every_registry, names, public_registries

ALL_YAML = sorted(
    p
    for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True)
    if not os.path.basename(p).startswith("Base-")
)
PIPELINES = [p for p in ALL_YAML if is_pipeline_file(p)]
CONFIGS = [p for p in ALL_YAML if p not in PIPELINES]
# No downloads: library trunks (timm/torchvision) build with random weights.
TINY = ["MODEL.BACKBONE.WIDTH_MULT", "0.25", "MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAINED", ""]


def _library_opts(path):
    """Extra overrides for a config with a library trunk: skipped without timm, and a ViT
    built at 64 pixels (its position embeddings fix its input size)."""
    cfg = setup_cfg(path, TINY)
    if "Timm" in cfg.MODEL.BACKBONE.NAME or "Timm" in _teacher_backbone(cfg):
        pytest.importorskip("timm", reason="timm not installed: pip install 'ride_dive[timm]'")
    return ["MODEL.BACKBONE.IMG_SIZE", "64"] if "vit" in cfg.MODEL.BACKBONE.ARCH else []


def _teacher_backbone(cfg):
    if not cfg.MODEL.TEACHER.CONFIG_FILE:
        return ""
    return setup_cfg(os.path.join(ROOT, cfg.MODEL.TEACHER.CONFIG_FILE), TINY).MODEL.BACKBONE.NAME


NUM_CLASSES = {
    "FashionMNISTLT": 10,
    "CIFAR10LT": 10,
    "CIFAR100LT": 100,
    "ImageNetLT": 1000,
    "PlacesLT": 365,
    "INaturalist2018": 8142,
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from a second intra-op thread, and on a busy machine its
    spin-waits make every op many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("registry", sorted(REGISTERED_NAMES))
def test_the_name_table_equals_the_registries(registry):
    """Both ways: every name in tests/registry_names.py is registered, and every registered
    name is in it (with the registries as the public packages fill them)."""
    live = public_registries()
    assert set(live) == set(REGISTERED_NAMES)
    registered = names(live[registry])
    assert registered - REGISTERED_NAMES[registry] == set(), "registered, not in the table"
    assert REGISTERED_NAMES[registry] - registered == set(), "in the table, not registered"


def test_no_registry_or_registration_outside_the_table():
    """Importing every ride_dive module finds no other registry and no other name."""
    found = every_registry()
    assert {name: names(r) for name, r in found.items()} == REGISTERED_NAMES
    assert found == public_registries()  # the same objects the packages export


def test_every_dataset_has_configs():
    assert len(CONFIGS) >= 30
    datasets = {setup_cfg(p).DATASETS.NAME for p in CONFIGS}
    assert set(NUM_CLASSES) <= datasets


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_builds_at_tiny_width(path):
    cfg = setup_cfg(path, TINY + _library_opts(path))
    assert cfg.DATASETS.NAME in DATASET_REGISTRY
    assert cfg.DATALOADER.SAMPLER in SAMPLER_REGISTRY
    num_classes = NUM_CLASSES[cfg.DATASETS.NAME]
    counts = [max(1, int(500 * 0.01 ** (i / max(num_classes - 1, 1)))) for i in range(num_classes)]
    model = build_model(cfg, counts)
    if model.needs_teacher:  # a distillation config: its teacher config must build too
        teacher_path = os.path.join(ROOT, cfg.MODEL.TEACHER.CONFIG_FILE)
        teacher_cfg = setup_cfg(teacher_path, TINY + _library_opts(teacher_path))
        assert teacher_cfg.DATASETS.NAME == cfg.DATASETS.NAME
        assert cfg.MODEL.TEACHER.WEIGHTS.endswith("model_final.pth")
        model.attach_teacher(FrozenTeacher(build_model(teacher_cfg, counts)))
    # Adaptive pooling: a small input is enough here (a ViT: the size it was built for).
    size = cfg.MODEL.BACKBONE.IMG_SIZE or min(cfg.INPUT.CROP_SIZE, 64)
    images = torch.randn(2, cfg.MODEL.BACKBONE.IN_CHANNELS, size, size)
    labels = torch.tensor([0, num_classes - 1])
    if not getattr(getattr(model, "head", None), "evaluation_only", False):
        model.train()
        losses = model(images, labels)
        assert losses and all(torch.isfinite(v) for v in losses.values())
    else:  # NCM: fitted on training features, then evaluated
        with torch.no_grad():
            model.eval()
            feats = model.extract_features(images)
        one_per_class = torch.cat([feats] * ((num_classes + 1) // 2))[:num_classes]
        model.head.fit(one_per_class, torch.arange(num_classes))
    model.eval()
    with torch.no_grad():
        out = model(images)
    logits = out["logits"] if isinstance(out, dict) else out
    assert logits.shape == (2, num_classes)


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: os.path.relpath(p, ROOT))
def test_pipeline_stages_are_configs_of_the_same_dataset(path):
    pipeline = load_pipeline(path)
    datasets = set()
    for stage in pipeline.stages:
        assert stage.config in CONFIGS, stage.config
        datasets.add(setup_cfg(stage.config, TINY).DATASETS.NAME)
    assert len(datasets) == 1
    assert any(s.teacher for s in pipeline.stages)  # every shipped pipeline distils


def test_every_dataset_has_dive_and_ride_dive_pipelines():
    names = {os.path.relpath(p, os.path.join(ROOT, "configs")) for p in PIPELINES}
    for folder, suffix in [
        ("FashionMNIST-LT", ""),
        ("CIFAR100-LT", "_if100"),
        ("CIFAR10-LT", "_if100"),
        ("ImageNet-LT", ""),
        ("iNat18", ""),
    ]:
        assert f"{folder}/ride_dive_pipeline{suffix}.yaml" in names
        assert f"{folder}/dive_pipeline{suffix}.yaml" in names
