"""tools/evaluate_run.py on tiny synthetic runs: files written, numbers consistent with the
run's own results.json, RIDE routers turned off, the per-class figure without a model, and
the --aggregate tables."""

import importlib.util
import json
import os

import pytest
import torch

from tests.conftest import RIDE_OVERRIDES, ROOT, tiny_overrides

_spec = importlib.util.spec_from_file_location(
    "evaluate_run", os.path.join(ROOT, "tools", "evaluate_run.py")
)
evaluate_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate_run)

try:
    import matplotlib  # noqa: F401

    HAS_MPL = True
except ImportError:
    HAS_MPL = False
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory):
    """A 1-epoch CE run on the tiny synthetic set: config.yaml, model_final.pth,
    results.json, as tools/train_net.py leaves them."""
    from ride_dive.engine import DefaultTrainer, save_config, setup_cfg

    out = tmp_path_factory.mktemp("runs") / "ce_s0"
    cfg = setup_cfg("", tiny_overrides(out, **{"SOLVER.MAX_EPOCHS": 1, "SOLVER.WARMUP_EPOCHS": 0}))
    save_config(cfg)
    DefaultTrainer(cfg).train()
    return str(out)


def test_label_shift_and_plots_end_to_end(ce_run, tmp_path):
    out = tmp_path / "eval"
    args = [ce_run, "--label-shift", "--output", str(out)] + (["--plots"] if HAS_MPL else [])
    assert evaluate_run.cli(args) == 0
    ev = json.load(open(out / "evaluation.json"))
    trained = json.load(open(os.path.join(ce_run, "results.json")))
    # The same weights on the same test split: the trainer's own numbers.
    for key in ("top1", "ece", "nll", "brier", "per_class"):
        assert ev[key] == pytest.approx(trained[key])
    assert ev["trained_with_prior_logits"] is False and "router" not in ev
    bins = ev["reliability"]
    assert len(bins["count"]) == 15 and sum(bins["count"]) == ev["num_samples"]
    gap = sum(
        n * abs(a - c) for n, a, c in zip(bins["count"], bins["accuracy"], bins["confidence"]) if n
    )
    assert 100 * gap / ev["num_samples"] == pytest.approx(ev["ece"])
    shift = json.load(open(out / "label_shift.json"))
    assert len(shift["rows"]) == 22 and shift["trained_with_prior_logits"] is False
    uniform = [r for r in shift["rows"] if r["protocol"] == "uniform" and not r["pc"]][0]
    assert uniform["top1"] == pytest.approx(ev["top1"]) and uniform["n"] == ev["num_samples"]
    table = (out / "label_shift.md").read_text()
    assert "| | F-50 | F-25 | F-10 | F-5 | F-2 | Uniform | B-2 |" in table
    assert "+ log p_target - log p_train" in table and "| PC |" in table
    if HAS_MPL:
        for name in ("reliability.png", "per_class_vs_train_count.png"):
            assert (out / name).read_bytes()[:8] == PNG
    # Nothing is written into the run directory when --output is given.
    assert not os.path.exists(os.path.join(ce_run, "evaluation.json"))


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed")
def test_per_class_figure_from_results_json_alone(ce_run, tmp_path):
    assert evaluate_run.cli([ce_run, "--from-results", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "per_class_vs_train_count.png").read_bytes()[:8] == PNG
    assert sorted(os.listdir(tmp_path)) == ["per_class_vs_train_count.png"]


def test_ride_with_router_is_evaluated_as_its_full_ensemble(tmp_path):
    """Untrained RIDE weights with a router: the tool turns it off and says so."""
    from ride_dive.data import build_datasets
    from ride_dive.engine import save_config, setup_cfg
    from ride_dive.modeling import build_model

    run = tmp_path / "ride_router"
    extra = dict(RIDE_OVERRIDES, **{"MODEL.RIDE.NUM_EXPERTS": 2, "MODEL.ROUTER.ENABLED": True})
    cfg = setup_cfg("", tiny_overrides(run, **extra))
    save_config(cfg)
    model = build_model(cfg, build_datasets(cfg).class_counts)
    torch.save({"model": model.state_dict()}, run / "model_final.pth")
    assert evaluate_run.cli([str(run), "--label-shift"]) == 0
    ev = json.load(open(run / "evaluation.json"))
    assert "full ensemble" in ev["router"]
    assert ev["trained_with_prior_logits"] is True  # RIDE experts with Balanced Softmax
    assert json.load(open(run / "label_shift.json"))["trained_with_prior_logits"] is True


def test_missing_weights_and_bad_arguments_are_clear_errors(ce_run, tmp_path, capsys):
    empty = tmp_path / "no_weights"
    empty.mkdir()
    (empty / "config.yaml").write_text(open(os.path.join(ce_run, "config.yaml")).read())
    assert evaluate_run.cli([str(empty)]) == 2
    assert "--weights" in capsys.readouterr().err
    assert evaluate_run.cli([str(tmp_path / "nowhere")]) == 2
    assert "config.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_run.parse_args([ce_run, ce_run])  # several runs only with --aggregate


def test_plots_without_matplotlib_is_one_clear_error(ce_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate_run, "pyplot", lambda: None)
    assert evaluate_run.cli([ce_run, "--plots", "--output", str(tmp_path)]) == 2
    assert "matplotlib" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # checked before any work


def _fake_seed(root, name, top1, ece, uniform_pc):
    run = root / name
    run.mkdir(parents=True)
    # Two bins of the reliability diagram: mean confidence (3 * .5 + 1 * .9) / 4 = 60%.
    bins = {"count": [3, 1], "confidence": [0.5, 0.9], "accuracy": [0.5, 1.0]}
    (run / "evaluation.json").write_text(
        json.dumps({"top1": top1, "ece": ece, "nll": 0.5, "brier": 0.25, "reliability": bins})
    )
    rows = [
        {"protocol": "uniform", "rho": 1.0, "pc": pc, "top1": uniform_pc if pc else top1, "n": 10}
        for pc in (False, True)
    ]
    (run / "label_shift.json").write_text(
        json.dumps({"trained_with_prior_logits": False, "rows": rows})
    )
    return str(run)


def test_aggregate_gives_mean_and_std_over_seeds(tmp_path, capsys):
    runs = [
        _fake_seed(tmp_path, "ce_r32_s0", 70.0, 4.0, 75.0),
        _fake_seed(tmp_path, "ce_r32_s1", 72.0, 6.0, 77.0),
        _fake_seed(tmp_path, "bsce_r32_s0", 80.0, 1.0, 81.0),
    ]
    md = tmp_path / "tables.md"
    assert evaluate_run.cli(["--aggregate", *runs, "--output", str(md)]) == 0
    text = md.read_text()
    assert text == capsys.readouterr().out
    # Sample standard deviation of 70 and 72 is sqrt(2).
    assert "| ce_r32 | no PC | 2 | 71.00 ± 1.41 |" in text
    assert "| ce_r32 | PC (+ log p_t − log p_s) | 2 | 76.00 ± 1.41 |" in text
    assert "| bsce_r32 | no PC | 1 | 80.00 |" in text
    assert (
        "| ce_r32 | 2 | 71.00 ± 1.41 | 60.00 ± 0.00 | 5.00 ± 1.41 | 0.500 ± 0.000 | 0.250 ± 0.000 |"
    ) in text
    assert evaluate_run.cli(["--aggregate", str(tmp_path / "missing_s0")]) == 2


def test_a_test_split_lacking_classes_is_one_error_before_the_model_runs(
    ce_run, tmp_path, monkeypatch, capsys
):
    from ride_dive.data import build_datasets

    def without_classes(cfg):
        splits = build_datasets(cfg)
        keep = (splits.test.labels < 3).nonzero().flatten().numpy()
        splits.test = splits.test.subset(keep)
        return splits

    monkeypatch.setattr(evaluate_run, "build_datasets", without_classes)
    monkeypatch.setattr(evaluate_run, "load_trained_model", lambda *a, **k: 1 / 0)
    out = tmp_path / "eval"
    assert evaluate_run.cli([ce_run, "--label-shift", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "none of 7 of its 10 classes (3, 4, 5, 6, 7, 8, 9)" in err and "Traceback" not in err
    assert not out.exists() or os.listdir(out) == []


def test_an_unwritable_output_folder_is_named_before_any_work(ce_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert evaluate_run.cli([ce_run, "--output", str(blocker / "eval")]) == 2
    err = capsys.readouterr().err
    assert f"--output '{blocker / 'eval'}' cannot be written" in err and "Traceback" not in err
    md = blocker / "tables.md"
    assert evaluate_run.cli(["--aggregate", ce_run, "--output", str(md)]) == 2
    assert "--output's folder" in capsys.readouterr().err
