"""Virtual examples (docs/METHODS.md 6): the formulas, DiVE's choice of tau, the teacher pass and
tools/analyze_virtual_examples.py end to end on the tiny synthetic set."""

import json
import math
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import ride_dive.modeling.virtual_examples as ve
from ride_dive.analysis import (
    choose_temperature,
    format_virtual_example_table,
    pick_temperature,
    plot_virtual_examples,
    shot_group_means,
    table_from_distributions,
    teacher_logits_on,
    teacher_virtual_examples,
    virtual_example_distribution,
    virtual_example_table,
)
from ride_dive.data import unaugmented_view
from tests.conftest import ROOT, tiny_overrides

TOOL = os.path.join(ROOT, "tools", "analyze_virtual_examples.py")
# 12 classes, imbalance 50: Many 300..103, Medium 72..24, Few 17..6 (984 images).
COUNTS = [int(300 * 0.02 ** (i / 11)) for i in range(12)]


def _labels(counts):
    return torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])


def _biased_logits(counts, a, b):
    """Every image of class y: z_c = a [c = y] - b log n_c (a BSCE-like teacher favouring
    the tail on the classes it does not predict)."""
    y = _labels(counts)
    log_n = torch.tensor(counts, dtype=torch.float64).log()
    return (a * nn.functional.one_hot(y, len(counts)).double() - b * log_n).float()


def _closed_form_v(counts, a, b, s):
    """V of ``_biased_logits`` at p / tau = s, written out: with w_c = n_c^(-b s) and
    e = exp(a s), an image of class y has t_c = w_c e^[c=y] / Z_y, Z_y = sum w + (e-1) w_y."""
    n = np.array(counts, dtype=np.float64)
    w, e = n ** (-b * s), math.exp(a * s)
    z = w.sum() + (e - 1) * w
    return w * (n * (e - 1) / z + (n / z).sum())


# ---------------------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------------------
def test_power_one_is_the_column_sum_of_softmax():
    z = torch.randn(50, 7) * 3
    v = virtual_example_distribution(z, temperature=2.0)
    assert v.dtype == torch.float64 and v.shape == (7,)
    torch.testing.assert_close(v, torch.softmax(z.double() / 2.0, dim=1).sum(0))
    assert float(v.sum()) == pytest.approx(50.0)


def test_power_half_is_the_normalised_square_root_of_softmax():
    z = torch.randn(40, 6) * 4
    s = torch.softmax(z.double() / 3.0, dim=1).sqrt()
    expected = (s / s.sum(dim=1, keepdim=True)).sum(0)
    torch.testing.assert_close(virtual_example_distribution(z, 3.0, power=0.5), expected)


def test_chunking_does_not_change_the_sums(monkeypatch):
    z = torch.randn(37, 5) * 5
    whole = virtual_example_distribution(z, 1.5, 0.5)
    monkeypatch.setattr(ve, "_CHUNK_ELEMENTS", 12)  # 2 rows per chunk
    torch.testing.assert_close(virtual_example_distribution(z, 1.5, 0.5), whole)


def test_bad_temperature_or_shape_is_an_error():
    with pytest.raises(ValueError):
        virtual_example_distribution(torch.zeros(3, 4), 0.0)
    with pytest.raises(ValueError):
        virtual_example_distribution(torch.zeros(3, 4), 1.0, power=-1.0)
    with pytest.raises(ValueError):
        virtual_example_distribution(torch.zeros(4), 1.0)


def test_shot_group_means_by_hand():
    counts = [200, 150, 100, 50, 20, 19, 5]  # 100 and 20 are Medium (thresholds inclusive)
    values = [1.0, 3.0, 10.0, 20.0, 30.0, 4.0, 6.0]
    assert shot_group_means(values, counts) == pytest.approx(
        {"many": 2.0, "medium": 20.0, "few": 5.0}
    )
    out = shot_group_means([1.0, 2.0, 4.0], [500, 300, 60])
    assert out == pytest.approx({"many": 1.5, "medium": 4.0}) and "few" not in out
    assert shot_group_means([7.0, 9.0], [5, 1]) == {"few": 8.0}
    assert shot_group_means([1.0, 2.0], [30, 40], many_threshold=35, few_threshold=35) == {
        "many": 2.0,
        "few": 1.0,
    }


# ---------------------------------------------------------------------------------------
# The table and the rule of thumb
# ---------------------------------------------------------------------------------------
def _closed_form_pick(a, b, power):
    n = np.array(COUNTS)
    for tau in range(1, 11):
        v = _closed_form_v(COUNTS, a, b, power / tau)
        if v[n < 20].mean() >= v[n > 100].mean():
            return tau
    return None


def test_table_matches_the_closed_form_and_picks_the_first_flat_tau():
    a, b = 8.0, 1.0
    z = _biased_logits(COUNTS, a, b)
    table = virtual_example_table(z, COUNTS)
    assert table["real"] == pytest.approx(shot_group_means(COUNTS, COUNTS))
    assert (table["head_group"], table["tail_group"]) == ("many", "few")
    assert len(table["rows"]) == 20
    n = np.array(COUNTS)
    for row in table["rows"]:
        v = _closed_form_v(COUNTS, a, b, row["power"] / row["temperature"])
        assert row["effective_temperature"] == row["temperature"] / row["power"]
        assert row["many"] == pytest.approx(v[n > 100].mean(), rel=1e-5)
        assert row["medium"] == pytest.approx(v[(n >= 20) & (n <= 100)].mean(), rel=1e-5)
        assert row["few"] == pytest.approx(v[n < 20].mean(), rel=1e-5)
        assert row["flat"] == (row["few"] >= row["many"])
    # Worked out with the closed form: p = 1 flattens at tau 5, p = 0.5 at tau 3.
    assert (_closed_form_pick(a, b, 1.0), _closed_form_pick(a, b, 0.5)) == (5, 3)
    assert table["picks"] == {1.0: 5.0, 0.5: 3.0}
    assert table["reached_flatness"] == {1.0: True, 0.5: True}
    assert pick_temperature(z, COUNTS, power=0.5) == (3.0, True)
    assert pick_temperature(z, COUNTS, power=1.0) == (5.0, True)
    text = format_virtual_example_table(table)
    assert text.splitlines()[2].lstrip().startswith("real counts")
    assert "p=1: tau=5 (effective 5, flat)" in text
    assert "p=0.5: tau=3 (effective 6, flat)" in text


def test_no_flat_tau_falls_back_to_the_flattest():
    # Too little tail bias: the Few average stays below the Many average up to tau = 10,
    # and the ratio grows with tau, so the flattest is the last.
    z = _biased_logits(COUNTS, 8.0, 0.5)
    assert _closed_form_pick(8.0, 0.5, 1.0) is None
    assert pick_temperature(z, COUNTS, power=1.0) == (10.0, False)
    # Hand-made distributions with the largest ratio in the middle.
    counts = [200, 150, 10, 5]
    dists = {
        (1.0, 1.0): torch.tensor([10.0, 10.0, 5.0, 5.0]),
        (2.0, 1.0): torch.tensor([10.0, 10.0, 8.0, 8.0]),
        (3.0, 1.0): torch.tensor([10.0, 10.0, 7.0, 7.0]),
    }
    table = table_from_distributions(dists, counts)
    assert table["picks"] == {1.0: 2.0} and table["reached_flatness"] == {1.0: False}
    assert "NOT flat" in format_virtual_example_table(table)


def test_exactly_flat_counts_as_flat():
    z = torch.zeros(30, 3)  # uniform targets: every V_c = 10
    assert pick_temperature(z, [25, 4, 1], power=1.0) == (1.0, True)


def test_medium_is_the_tail_without_few_classes():
    counts = [500, 300, 150, 60, 40]
    table = virtual_example_table(_biased_logits(counts, 6.0, 1.0), counts, powers=(1.0,))
    assert (table["head_group"], table["tail_group"]) == ("many", "medium")
    for row in table["rows"]:
        assert "few" not in row and (row["head"], row["tail"]) == (row["many"], row["medium"])


def test_one_group_compares_the_frequency_thirds():
    counts = [90, 22, 80, 25, 70, 60, 50, 40, 30]  # all Medium, not sorted
    z = _biased_logits(counts, 6.0, 1.0)
    table = virtual_example_table(z, counts, temperatures=(1, 5), powers=(1.0,))
    assert table["tail_group"] == "least-frequent third"
    assert set(table["real"]) == {"medium"}
    for row in table["rows"]:
        v = virtual_example_distribution(z, row["temperature"])
        assert row["head"] == pytest.approx(float(v[[0, 2, 4]].mean()))  # 90, 80, 70
        assert row["tail"] == pytest.approx(float(v[[1, 3, 8]].mean()))  # 22, 25, 30
    assert table["rows"][0]["flat"] is False  # tau = 1: each class keeps its own images
    assert table["rows"][1]["flat"] is True  # tail/head = 1.006 (closed form)
    assert pick_temperature(z, counts, power=1.0) == (5.0, True)  # 0.976 at tau = 4


# ---------------------------------------------------------------------------------------
# Running the teacher
# ---------------------------------------------------------------------------------------
class _Teacher(nn.Module):
    """A linear teacher with a frozen BN child; returns a tensor or a dict."""

    def __init__(self, as_dict: bool):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(4)
        self.as_dict = as_dict
        self.modes_seen = []

    def forward(self, x):
        self.modes_seen.append((self.training, self.bn.training, torch.is_inference_mode_enabled()))
        z = self.fc(self.bn(x))
        return {"logits": z, "experts_used": torch.ones(len(x))} if self.as_dict else z


@pytest.mark.parametrize("as_dict", [False, True])
def test_teacher_logits_on_restores_modes_and_keeps_order(as_dict):
    torch.manual_seed(0)
    model = _Teacher(as_dict)
    model.train()
    model.bn.eval()  # a frozen part must stay frozen
    images = torch.randn(10, 4)
    loader = [(images[:4], torch.zeros(4)), (images[4:], torch.zeros(6))]
    logits = teacher_logits_on(model, loader, "cpu")
    assert logits.dtype == torch.float32 and logits.shape == (10, 3)
    assert not logits.is_inference()
    assert model.modes_seen == [(False, False, True)] * 2
    assert model.training and not model.bn.training and model.fc.training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(logits, model.fc(model.bn(images)))


def test_streamed_sums_equal_the_logit_path():
    torch.manual_seed(0)
    model = _Teacher(as_dict=True)
    images = torch.randn(9, 4)
    loader = [(images[i : i + 4], torch.zeros(len(images[i : i + 4]))) for i in range(0, 9, 4)]
    grid = teacher_virtual_examples(model, loader, "cpu", temperatures=(1, 2), powers=(1, 0.5))
    assert model.training
    logits = teacher_logits_on(model, loader, "cpu")
    assert set(grid) == {(1.0, 1.0), (2.0, 1.0), (1.0, 0.5), (2.0, 0.5)}
    for (tau, p), v in grid.items():
        torch.testing.assert_close(v, virtual_example_distribution(logits, tau, p))
    with pytest.raises(ValueError):
        teacher_virtual_examples(model, [], "cpu")
    empty = teacher_virtual_examples(
        model, [], "cpu", temperatures=(1,), powers=(1,), num_classes=3
    )
    assert torch.equal(empty[(1.0, 1.0)], torch.zeros(3, dtype=torch.float64))


def test_file_datasets_are_analysed_with_the_test_transform(tmp_path):
    from ride_dive.config import get_cfg
    from ride_dive.data import ListFileDataset, build_file_transforms

    (tmp_path / "train.txt").write_text("a/1.jpg 0\nb/2.jpg 1\n")
    cfg = get_cfg()
    train = build_file_transforms(cfg, True, (0.5,) * 3, (0.25,) * 3)
    dataset = ListFileDataset(
        str(tmp_path), str(tmp_path / "train.txt"), train, 2, check_files=False
    )  # no image is read
    view = unaugmented_view(cfg, dataset)
    assert dataset.transform is train  # the training split itself is unchanged
    names = [type(t).__name__ for t in view.transform.transforms]
    assert "CenterCrop" in names and "RandomResizedCrop" not in names
    assert torch.equal(view.labels, dataset.labels)


def _tiny_teacher(tmp_path):
    """A tiny cfg and an untrained checkpoint of its model (``model_final.pth``)."""
    from ride_dive.checkpoint import Checkpointer
    from ride_dive.data import build_datasets
    from ride_dive.engine import setup_cfg
    from ride_dive.modeling import build_model

    cfg = setup_cfg("", tiny_overrides(tmp_path / "teacher"))
    splits = build_datasets(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, splits.class_counts)
    path = Checkpointer(model, str(tmp_path / "teacher")).save("model_final")
    return cfg, splits, model, path


def test_choose_temperature_follows_pick_temperature(tmp_path):
    cfg, splits, model, _ = _tiny_teacher(tmp_path)
    if not hasattr(cfg, "DISTILL"):
        pytest.skip("cfg.DISTILL is not in the config defaults yet")
    tau = choose_temperature(cfg, model, splits.train, splits.class_counts, "cpu")
    assert isinstance(tau, float) and 1.0 <= tau <= 10.0
    from ride_dive.data import build_test_loader

    logits = teacher_logits_on(model, build_test_loader(cfg, splits.train), "cpu")
    expected, _ = pick_temperature(logits, splits.class_counts, power=cfg.DISTILL.POWER)
    assert tau == expected


# ---------------------------------------------------------------------------------------
# Plot and CLI
# ---------------------------------------------------------------------------------------
def test_plot_without_matplotlib_writes_nothing(tmp_path, monkeypatch):
    table = virtual_example_table(_biased_logits(COUNTS, 8.0, 1.0), COUNTS)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    assert plot_virtual_examples(table, str(tmp_path / "ve.png")) is False
    assert not (tmp_path / "ve.png").exists()


def _run(args):
    return subprocess.run(
        [sys.executable, TOOL, *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_cli_end_to_end(tmp_path):
    _, _, _, weights = _tiny_teacher(tmp_path)
    out = tmp_path / "analysis"
    r = _run(
        ["--output", str(out)] + tiny_overrides(tmp_path / "teacher", **{"MODEL.WEIGHTS": weights})
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "real counts" in r.stdout and "picks: p=1: tau=" in r.stdout
    table = json.load(open(out / "virtual_examples.json"))
    # Tiny set: 10 classes with 40..4 images, so Medium vs Few.
    assert (table["head_group"], table["tail_group"]) == ("medium", "few")
    assert {"1.0", "0.5"} <= set(table["picks"])
    assert len([r for r in table["rows"] if r["power"] == 1.0]) == 10
    assert (out / "virtual_examples.png").stat().st_size > 0
    assert not (tmp_path / "teacher" / "virtual_examples.json").exists()


def test_cli_needs_weights(tmp_path, capsys):
    r = _run(tiny_overrides(tmp_path / "o"))
    assert r.returncode == 2 and "MODEL.WEIGHTS" in r.stderr
    assert "Traceback" not in r.stderr
    # In-process (a subprocess costs seconds): a missing file is the same clear error.
    tool = runpy.run_path(TOOL, run_name="analyze_virtual_examples")
    argv = tiny_overrides(tmp_path / "o", **{"MODEL.WEIGHTS": str(tmp_path / "none.pth")})
    assert tool["cli"](argv) == 2
    assert "none.pth" in capsys.readouterr().err
