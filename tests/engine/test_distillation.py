"""DiVE through the trainer: how the teacher is handled (timm's distillation rules: frozen,
in eval mode, outside the student's optimizer, DDP wrapper and checkpoints)."""

import json
import os

import pytest
import torch

from ride_dive.config import ConfigError
from ride_dive.engine import DefaultTrainer
from ride_dive.modeling import build_model
from ride_dive.modeling.teacher import FrozenTeacher
from ride_dive.utils.logger import setup_logger
from tests.conftest import RIDE_OVERRIDES

setup_logger("", rank=1)  # quiet

TEACHER = {"MODEL.LOSS.NAME": "BalancedSoftmaxLoss", "SOLVER.MAX_EPOCHS": 2}
RIDE = {**RIDE_OVERRIDES, "SOLVER.MAX_EPOCHS": 2}


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A 2-epoch BSCE teacher: (its config.yaml, its model_final.pth)."""
    from ride_dive.engine import default_setup, setup_cfg
    from tests.conftest import tiny_overrides

    out = tmp_path_factory.mktemp("teacher")
    cfg = setup_cfg("", tiny_overrides(out, **TEACHER))
    default_setup(cfg)
    setup_logger("", rank=1)
    DefaultTrainer(cfg).train()
    return os.path.join(out, "config.yaml"), os.path.join(out, "model_final.pth")


def _student(tiny_cfg, teacher_run, **extra):
    config, weights = teacher_run
    return tiny_cfg(
        **{
            "MODEL.LOSS.NAME": "DiVELoss",
            "MODEL.TEACHER.CONFIG_FILE": config,
            "MODEL.TEACHER.WEIGHTS": weights,
            "SOLVER.MAX_EPOCHS": 2,
            **extra,
        }
    )


def test_teacher_is_frozen_in_eval_mode_and_sees_the_students_batch(tiny_cfg, teacher_run):
    cfg = _student(tiny_cfg, teacher_run)
    trainer = DefaultTrainer(cfg)
    teacher_state = {
        k: v.clone() for k, v in torch.load(teacher_run[1], weights_only=True)["model"].items()
    }
    seen = {"teacher": [], "student": [], "teacher_training": []}

    def grab(name):
        def hook(module, inputs):
            seen[name].append(inputs[0].detach().clone())
            if name == "teacher":
                seen["teacher_training"].append(any(m.training for m in module.modules()))

        return hook

    trainer.model.backbone.register_forward_pre_hook(grab("student"))

    results = trainer.train()
    teacher = trainer.model.teacher
    assert isinstance(teacher, FrozenTeacher)
    # Hooks on the teacher can only be added once it exists: check one more step by hand.
    teacher.model.register_forward_pre_hook(grab("teacher"))
    trainer.model.train()  # the trainer's call: must not reach the teacher
    assert not any(m.training for m in teacher.modules())
    images = torch.randn(4, 3, 16, 16)
    trainer.model(images, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(seen["teacher"][-1], seen["student"][-1])
    assert seen["teacher_training"] == [False]
    # Weights and BN statistics unchanged: the teacher (its BatchNorms folded into its
    # convolutions, modeling/fold_bn.py) still computes the checkpoint's function, and the
    # weights it kept as they were are bit-identical; nothing requires grad.
    from ride_dive.engine import setup_cfg

    unfolded = build_model(setup_cfg(teacher_run[0], []), trainer.splits.class_counts)
    unfolded.load_state_dict(teacher_state)
    with torch.no_grad():
        expected = unfolded.eval()(images)
    torch.testing.assert_close(teacher(images), expected, atol=1e-4, rtol=1e-4)
    kept = {k: v for k, v in teacher.model.state_dict().items() if k in teacher_state}
    assert any(".bn" in k for k in teacher_state) and not any(".bn" in k for k in kept)
    for key, value in kept.items():
        if ".conv" not in key and "shortcut" not in key:  # the folded convolutions changed
            assert torch.equal(value.cpu(), teacher_state[key]), key
    assert not any(p.requires_grad for p in teacher.parameters())
    # Not in the optimizer, not in the student's checkpoint.
    teacher_params = {id(p) for p in teacher.parameters()}
    optimized = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not teacher_params & optimized
    plain = build_model(tiny_cfg(), trainer.splits.class_counts)
    saved = torch.load(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"), weights_only=True)
    assert set(saved["model"]) == set(plain.state_dict())
    # Both loss terms are logged.
    lines = [json.loads(x) for x in open(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))]
    assert any("loss_cls" in x and "loss_distill" in x for x in lines)
    assert results["distill_temperature"] == 3.0


def test_student_checkpoint_evaluates_without_the_teacher(tiny_cfg, teacher_run, tmp_path):
    cfg = _student(tiny_cfg, teacher_run)
    DefaultTrainer(cfg).train()
    # Evaluation needs no teacher files at all.
    evaluation = tiny_cfg(
        **{
            "MODEL.LOSS.NAME": "DiVELoss",
            "MODEL.WEIGHTS": os.path.join(cfg.OUTPUT_DIR, "model_final.pth"),
        },
        output_dir=tmp_path / "eval",
    )
    trainer = DefaultTrainer(evaluation)
    trainer.checkpointer.load(evaluation.MODEL.WEIGHTS, checkpointables=[])
    assert "top1" in trainer.test() and trainer.model.teacher is None


def test_training_without_a_teacher_is_a_config_error(tiny_cfg):
    trainer = DefaultTrainer(tiny_cfg(**{"MODEL.LOSS.NAME": "DiVELoss"}))
    with pytest.raises(ConfigError, match="MODEL.TEACHER.CONFIG_FILE"):
        trainer.train()
    missing = tiny_cfg(
        **{
            "MODEL.LOSS.NAME": "DiVELoss",
            "MODEL.TEACHER.CONFIG_FILE": "x.yaml",
            "MODEL.TEACHER.WEIGHTS": "/nonexistent/model_final.pth",
        }
    )
    with pytest.raises(FileNotFoundError, match="/nonexistent/model_final.pth"):
        DefaultTrainer(missing).train()


def test_ride_dive_student_from_a_ride_teacher_with_auto_temperature(tiny_cfg, tmp_path):
    teacher_cfg = tiny_cfg(**{**RIDE, "MODEL.RIDE.NUM_EXPERTS": 3}, output_dir=tmp_path / "teacher")
    DefaultTrainer(teacher_cfg).train()
    config = tmp_path / "teacher.yaml"
    config.write_text(teacher_cfg.dump())
    student = tiny_cfg(
        **{
            **RIDE,
            "MODEL.RIDE.NUM_EXPERTS": 2,
            "MODEL.LOSS.RIDE.BASE_LOSS": "DiVELoss",
            "MODEL.TEACHER.CONFIG_FILE": str(config),
            "MODEL.TEACHER.WEIGHTS": str(tmp_path / "teacher" / "model_final.pth"),
            "DISTILL.TEMPERATURE": "auto",
            "SOLVER.MAX_EPOCHS": 1,
            "SOLVER.WARMUP_EPOCHS": 0,
        },
        output_dir=tmp_path / "student",
    )
    trainer = DefaultTrainer(student)
    results = trainer.train()
    assert trainer.model.teacher.model.num_experts == 3
    assert 1.0 <= results["distill_temperature"] <= 10.0
    lines = [json.loads(x) for x in open(tmp_path / "student" / "metrics.json")]
    keys = set().union(*lines)
    assert {"loss_cls_e0", "loss_distill_e1", "loss_div_e1"} <= keys
