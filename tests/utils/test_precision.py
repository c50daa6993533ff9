"""SOLVER.AMP.DTYPE / TEST.AMP.DTYPE "auto": bf16 where the device runs it natively, fp16 on
GPUs without bf16, fp32 where bf16 would be emulated; the run logs the choice."""

import pytest
import torch

from ride_dive.config import get_cfg
from ride_dive.utils import env


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(env, "cpu_fast_bf16", lambda: (False, "neither AMX nor AVX512-BF16"))


@pytest.fixture
def cpu_with_amx(monkeypatch):
    monkeypatch.setattr(env, "cpu_fast_bf16", lambda: (True, "AMX"))


def test_auto_on_a_cpu_follows_its_bf16_support(cpu_with_amx):
    cpu = torch.device("cpu")
    assert env.resolve_amp(True, "auto", cpu) == (torch.bfloat16, "bf16 autocast: this CPU has AMX")
    assert env.resolve_amp(False, "auto", cpu) == (None, "fp32 (AMP off)")
    # An explicit dtype is used as given.
    assert env.resolve_amp(True, "float16", cpu)[0] is torch.float16


def test_auto_stays_fp32_where_bf16_would_be_emulated(cpu_without_bf16):
    dtype, why = env.resolve_amp(True, "auto", torch.device("cpu"))
    assert dtype is None and "would be emulated" in why
    assert env.resolve_amp(True, "bfloat16", torch.device("cpu"))[0] is torch.bfloat16


@pytest.mark.parametrize("bf16,expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_on_a_gpu_prefers_bf16_then_fp16(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert env.resolve_amp(True, "auto", torch.device("cuda", 0))[0] is expected


def test_the_config_resolves_for_its_device_and_the_line_says_both(cpu_with_amx):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.SOLVER.AMP.ENABLED = True
    assert cfg.SOLVER.AMP.DTYPE == "auto" and cfg.TEST.AMP.DTYPE == "auto"
    assert env.amp_dtype(cfg) is torch.bfloat16 and env.eval_amp_dtype(cfg) is None
    cfg.MODEL.CHANNELS_LAST = True
    assert env.describe_precision(cfg) == (
        "Precision: training bf16 autocast: this CPU has AMX, channels_last; "
        "evaluation fp32 (AMP off)"
    )
