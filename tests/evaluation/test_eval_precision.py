"""Evaluation precision is TEST.AMP, never SOLVER.AMP: a model trained in bf16 is evaluated in
fp32 unless the user asks for bf16 evaluation."""

import pytest
import torch

from ride_dive.config import ConfigError
from ride_dive.data import build_datasets
from ride_dive.engine import setup_cfg
from ride_dive.evaluation.split_evaluation import evaluate
from ride_dive.modeling import build_model
from ride_dive.utils.env import amp_dtype, eval_amp_dtype
from tests.conftest import tiny_overrides


def _cfg(tmp_path, **extra):
    return setup_cfg("", tiny_overrides(tmp_path, **extra))


def test_the_two_keys_resolve_independently(tmp_path):
    cfg = _cfg(tmp_path, **{"SOLVER.AMP.ENABLED": True, "SOLVER.AMP.DTYPE": "bfloat16"})
    assert amp_dtype(cfg) is torch.bfloat16 and eval_amp_dtype(cfg) is None
    cfg = _cfg(tmp_path, **{"TEST.AMP.ENABLED": True, "TEST.AMP.DTYPE": "float16"})
    assert amp_dtype(cfg) is None and eval_amp_dtype(cfg) is torch.float16


def test_evaluation_numbers_do_not_depend_on_the_training_precision(tmp_path):
    torch.manual_seed(0)
    fp32 = _cfg(tmp_path)
    splits = build_datasets(fp32)
    model = build_model(fp32, splits.class_counts)
    device = torch.device("cpu")

    def run(cfg):
        return evaluate(cfg, model, splits.test, splits.class_counts, device)

    reference = run(fp32)
    trained_in_bf16 = run(
        _cfg(tmp_path, **{"SOLVER.AMP.ENABLED": True, "SOLVER.AMP.DTYPE": "bfloat16"})
    )
    assert reference["eval_precision"] == trained_in_bf16["eval_precision"] == "float32"
    for key in ("top1", "nll", "brier", "ece", "per_class"):
        assert trained_in_bf16[key] == reference[key]  # bit for bit, not approximately
    # Asked for, bf16 evaluation does run in bf16: the NLL moves, a little.
    fast = run(_cfg(tmp_path, **{"TEST.AMP.ENABLED": True, "TEST.AMP.DTYPE": "bfloat16"}))
    assert fast["eval_precision"] == "bfloat16 autocast"
    assert fast["nll"] != reference["nll"]
    assert fast["nll"] == pytest.approx(reference["nll"], rel=0.05)


def test_a_bad_evaluation_dtype_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="TEST.AMP.DTYPE must be 'auto', 'bfloat16' or 'float16'"):
        _cfg(tmp_path, **{"TEST.AMP.DTYPE": "int8"})
