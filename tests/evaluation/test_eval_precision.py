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


def _autocast_seen_in_forward(cfg, model, splits):
    """The (enabled, dtype) of CPU autocast inside the model's forward during evaluate()."""
    seen = []
    hook = model.register_forward_hook(
        lambda *_: seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
    )
    try:
        evaluate(cfg, model, splits.test, splits.class_counts, torch.device("cpu"))
    finally:
        hook.remove()
    return set(seen)


def test_the_model_runs_under_the_evaluation_autocast_only(tmp_path):
    """Inside forward: no autocast under a bf16 training recipe, bf16 when TEST.AMP asks."""
    cfg = _cfg(tmp_path, **{"SOLVER.AMP.ENABLED": True, "SOLVER.AMP.DTYPE": "bfloat16"})
    splits = build_datasets(cfg)
    model = build_model(cfg, splits.class_counts)
    assert {enabled for enabled, _ in _autocast_seen_in_forward(cfg, model, splits)} == {False}
    fast = _cfg(tmp_path, **{"TEST.AMP.ENABLED": True, "TEST.AMP.DTYPE": "bfloat16"})
    assert _autocast_seen_in_forward(fast, model, splits) == {(True, torch.bfloat16)}


def test_the_eval_precision_benchmark_on_a_run(tmp_path, capsys):
    """benchmarks/eval_precision.py on a saved run: fp32 against bf16, logits close, a table."""
    from benchmarks.eval_precision import compare_logits, main
    from ride_dive.engine import save_config

    run = tmp_path / "run"
    cfg = _cfg(run)
    save_config(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, build_datasets(cfg).class_counts)
    torch.save({"model": model.state_dict()}, run / "model_final.pth")
    main([str(run), "--rounds", "1"])
    out = capsys.readouterr().out
    assert "| fp32 (default) |" in out and "| bfloat16 autocast |" in out
    assert "predictions change" in out

    labels = torch.tensor([0, 1, 1])
    fp32 = torch.tensor([[2.0, 1.0], [0.0, 1.0], [1.0, 0.9]])
    low = torch.tensor([[2.0, 1.0], [0.0, 1.25], [0.875, 0.9]])
    stats = compare_logits(fp32, low, labels)
    assert stats["max_abs_logit_diff"] == 0.25 and stats["predictions_changed"] == 1
    assert stats["top1_fp32"] == pytest.approx(200 / 3) and stats["top1_low"] == 100.0
