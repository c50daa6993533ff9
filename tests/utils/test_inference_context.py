"""``inference_context`` (eval + inference mode, every module's own flag given back) and
``unwrap_model``."""

import pytest
import torch
from torch import nn

from ride_dive.checkpoint import unwrap_model as checkpoint_unwrap_model
from ride_dive.utils.modules import inference_context, unwrap_model


class Student(nn.Module):
    """A training model holding a part that must stay in eval mode (a frozen teacher)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        self.teacher = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        self.seen = []

    def forward(self, x):
        self.seen.append(
            (
                self.training,
                self.body[1].training,
                self.teacher[1].training,
                torch.is_inference_mode_enabled(),
            )
        )
        return self.body(x) + self.teacher(x)


def _modes(model):
    return [m.training for m in model.modules()]


@pytest.fixture
def student():
    model = Student().train()
    model.teacher.eval()
    return model


def test_eval_and_inference_mode_inside_and_each_modules_flag_back(student):
    before = _modes(student)
    assert True in before and False in before  # mixed modes: the case that matters
    with inference_context(student) as inside:
        assert inside is student
        out = student(torch.randn(4, 2))
        assert out.is_inference()
    assert student.seen == [(False, False, False, True)]
    assert _modes(student) == before
    assert not student.teacher.training and student.body.training
    assert not torch.is_inference_mode_enabled()


def test_batchnorm_statistics_do_not_move_inside(student):
    stats = student.body[1].running_mean.clone()
    with inference_context(student):
        student(torch.randn(8, 2) * 5 + 3)
    torch.testing.assert_close(student.body[1].running_mean, stats)


def test_flags_are_given_back_when_the_body_raises(student):
    before = _modes(student)
    with pytest.raises(RuntimeError, match="boom"):
        with inference_context(student):
            raise RuntimeError("boom")
    assert _modes(student) == before
    assert not torch.is_inference_mode_enabled()


def test_results_concatenated_outside_are_ordinary_tensors(student):
    with inference_context(student):
        parts = [student(torch.randn(3, 2)) for _ in range(2)]
    joined = torch.cat(parts)
    assert not joined.is_inference()
    joined += 1  # in place: refused on an inference tensor outside inference mode


def test_unwrap_model_removes_every_data_parallel_layer():
    inner = nn.Linear(2, 2)
    assert unwrap_model(inner) is inner
    assert unwrap_model(nn.DataParallel(inner)) is inner
    assert unwrap_model(nn.DataParallel(nn.DataParallel(inner))) is inner
    # A module merely holding a ``module`` attribute is not a wrapper.
    holder = nn.Module()
    holder.module = inner
    assert unwrap_model(holder) is holder


def test_checkpoint_keeps_exporting_unwrap_model():
    assert checkpoint_unwrap_model is unwrap_model
