"""Library trunks through the trainer, and DiVE across architectures and input sizes."""

import os

import pytest
import torch
import torch.nn.functional as F

from ride_dive.data import BatchAugment
from ride_dive.engine import DefaultTrainer
from ride_dive.modeling.teacher_input import ModelInput, TeacherInput, teacher_input_for
from ride_dive.utils.logger import setup_logger

setup_logger("", rank=1)  # quiet

# A timm test ViT that sees the 16-pixel synthetic images upsampled to 32, normalised with
# its own statistics (as a CLIP/ImageNet-pretrained trunk would be).
VIT = {
    "MODEL.BACKBONE.NAME": "TimmBackbone",
    "MODEL.BACKBONE.ARCH": "test_vit",
    "MODEL.BACKBONE.IMG_SIZE": 32,
    "MODEL.CHANNELS_LAST": False,
    "MODEL.LOSS.NAME": "BalancedSoftmaxLoss",
    "INPUT.UPSAMPLE_SIZE": 32,
    "INPUT.PIXEL_MEAN": "[0.5, 0.5, 0.5]",
    "INPUT.PIXEL_STD": "[0.25, 0.25, 0.25]",
    "SOLVER.MAX_EPOCHS": 1,
    "SOLVER.WARMUP_EPOCHS": 0,
}


@pytest.fixture
def vit_cfg(tiny_cfg):
    pytest.importorskip("timm", reason="timm not installed: pip install 'ride_dive[timm]'")

    def make(output_dir, **extra):
        return tiny_cfg(**{**VIT, **extra}, output_dir=output_dir)

    return make


def test_a_timm_vit_trains_and_evaluates_through_the_trainer(vit_cfg, tmp_path):
    cfg = vit_cfg(tmp_path / "vit", **{"MODEL.LORA.RANK": 2})
    results = DefaultTrainer(cfg).train()
    assert 0.0 <= results["top1"] <= 100.0
    saved = torch.load(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"), weights_only=True)
    assert any(".lora_a." in k for k in saved["model"])


def test_a_torchvision_resnet_trains_and_evaluates_through_the_trainer(tiny_cfg, tmp_path):
    cfg = tiny_cfg(
        **{
            "MODEL.BACKBONE.NAME": "TorchvisionBackbone",
            "MODEL.BACKBONE.ARCH": "resnet18",
            "SOLVER.MAX_EPOCHS": 1,
            "SOLVER.WARMUP_EPOCHS": 0,
            "SOLVER.OPTIMIZER": "AdamW",
            "SOLVER.BASE_LR": 1e-3,
            "SOLVER.BACKBONE_LR_FACTOR": 0.1,
            "SOLVER.LAYER_DECAY": 0.8,
        },
        output_dir=tmp_path / "r18",
    )
    trainer = DefaultTrainer(cfg)
    results = trainer.train()
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert len({g["lr_scale"] for g in trainer.optimizer.param_groups}) > 2
    assert 0.0 <= results["top1"] <= 100.0


def test_teacher_input_undoes_resizes_and_renormalises():
    student = ModelInput(1, 16, (0.3,), (0.2,))
    teacher = ModelInput(3, 24, (0.5, 0.4, 0.3), (0.25, 0.2, 0.1))
    batch = torch.randn(2, 1, 16, 16)
    raw = batch * 0.2 + 0.3
    grey = F.interpolate(raw, (24, 24), mode="bilinear", align_corners=False)
    expected = (grey.expand(-1, 3, -1, -1) - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / (
        torch.tensor([0.25, 0.2, 0.1]).view(1, 3, 1, 1)
    )
    torch.testing.assert_close(TeacherInput(student, teacher)(batch), expected)
    back = TeacherInput(teacher, ModelInput(1, 12, (0.0,), (1.0,)))  # colour -> grey, shrink
    assert back(expected).shape == (2, 1, 12, 12)


def test_the_same_input_needs_no_adapter(tiny_cfg):
    cfg = tiny_cfg()

    class Stats:
        mean, std = [0.4, 0.4, 0.4], [0.2, 0.2, 0.2]

    assert teacher_input_for(cfg, cfg, Stats()) is None


def test_upsampling_equals_resizing_the_normalised_batch():
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    native = BatchAugment([0.5] * 3, [0.2] * 3, crop_size=16, train=False)
    upsampled = BatchAugment([0.5] * 3, [0.2] * 3, crop_size=16, train=False, upsample_size=40)
    expected = F.interpolate(native(images), (40, 40), mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsampled(images), expected)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    train = BatchAugment(
        [0.5] * 3, [0.2] * 3, crop_size=16, padding=2, hflip=True, upsample_size=40
    )
    plain = BatchAugment([0.5] * 3, [0.2] * 3, crop_size=16, padding=2, hflip=True)
    resized = F.interpolate(plain(images, g2), (40, 40), mode="bilinear", align_corners=False)
    torch.testing.assert_close(train(images, g1), resized)


def test_a_vit_teacher_distills_into_a_resnet32_student_at_another_size(
    vit_cfg, tiny_cfg, tmp_path
):
    teacher_cfg = vit_cfg(tmp_path / "teacher")
    DefaultTrainer(teacher_cfg).train()
    config = tmp_path / "teacher.yaml"
    config.write_text(teacher_cfg.dump())
    student_cfg = tiny_cfg(
        **{
            "MODEL.LOSS.NAME": "DiVELoss",
            "MODEL.TEACHER.CONFIG_FILE": str(config),
            "MODEL.TEACHER.WEIGHTS": os.path.join(teacher_cfg.OUTPUT_DIR, "model_final.pth"),
            "DISTILL.TEMPERATURE": "auto",
            "SOLVER.MAX_EPOCHS": 1,
            "SOLVER.WARMUP_EPOCHS": 0,
        },
        output_dir=tmp_path / "student",
    )
    trainer = DefaultTrainer(student_cfg)
    seen = {}
    trainer.model.backbone.register_forward_pre_hook(
        lambda m, inputs: seen.__setitem__("student", inputs[0].detach().clone())
    )
    results = trainer.train()
    assert 1.0 <= results["distill_temperature"] <= 10.0  # auto tau on the adapted teacher
    teacher = trainer.model.teacher
    adapter = teacher.input_adapter
    assert adapter.student.size == 16 and adapter.teacher.size == 32
    assert adapter.teacher.mean == (0.5, 0.5, 0.5) and adapter.student.mean != adapter.teacher.mean
    # One more step by hand: the teacher gets the student's very batch, re-presented.
    teacher.model.register_forward_pre_hook(
        lambda m, inputs: seen.__setitem__("teacher", inputs[0].detach().clone())
    )
    trainer.model.train()
    images = torch.randn(4, 3, 16, 16)
    trainer.model(images, torch.tensor([0, 1, 2, 3]))
    assert seen["teacher"].shape == (4, 3, 32, 32)
    torch.testing.assert_close(seen["teacher"], adapter(seen["student"]))
