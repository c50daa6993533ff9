"""inference_on_dataset / ClassificationEvaluator / gather_predictions, and reporting."""

import json
import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ride_dive.config import get_cfg
from ride_dive.evaluation import (
    ClassificationEvaluator,
    compute_classification_metrics,
    format_results_table,
    gather_predictions,
    inference_on_dataset,
    save_results_json,
)
from ride_dive.utils import comm


class PassThrough(nn.Module):
    """Returns its input as logits and records the modes it ran under."""

    def __init__(self, as_dict=False):
        super().__init__()
        self.frozen = nn.BatchNorm1d(2)  # stands in for a teacher kept in eval mode
        self.as_dict = as_dict
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, torch.is_inference_mode_enabled()))
        return {"logits": x} if self.as_dict else x


def _dataset():
    # Row = logits. Labels 0,0,1,1,2 (class 3 never appears); predictions 0,1,1,1,0.
    logits = torch.tensor(
        [
            [4.0, 1, 0, 0],
            [1.0, 4, 0, 0],
            [0.0, 4, 1, 0],
            [0.0, 4, 1, 0],
            [4.0, 0, 1, 0],
        ]
    )
    labels = torch.tensor([0, 0, 1, 1, 2])
    return logits, labels


def test_inference_on_dataset_metrics_and_modes():
    logits, labels = _dataset()
    model = PassThrough()
    model.train()
    model.frozen.eval()
    loader = DataLoader(TensorDataset(logits, labels), batch_size=2)
    # Class counts: class 0 many, 1 medium, 2 few, 3 few but absent from the test set.
    res = inference_on_dataset(model, loader, [150, 60, 4, 3], "cpu")
    assert model.seen == [(False, True)] * 3
    assert model.training and not model.frozen.training
    assert res["top1"] == pytest.approx(60.0)
    # Top-5 with 4 classes is top-4: always right.
    assert res["top5"] == 100.0
    assert res["per_class"] == [50.0, 100.0, 0.0, None]
    assert res["many"] == 50.0 and res["medium"] == 100.0 and res["few"] == 0.0
    assert res["num_samples"] == 5
    probs = logits.softmax(1)
    conf = probs.max(1).values.double()
    correct = torch.tensor([1.0, 0, 1, 1, 0], dtype=torch.float64)
    # With one bin the ECE is |accuracy - mean confidence|.
    one_bin = inference_on_dataset(model, loader, None, "cpu", ece_bins=1)
    assert one_bin["ece"] == pytest.approx(100 * abs(correct.mean() - conf.mean()).item())
    assert "many" not in one_bin and "few" not in one_bin


def test_inference_accepts_dict_output_and_autocast():
    logits, labels = _dataset()
    loader = DataLoader(TensorDataset(logits, labels), batch_size=5)
    res = inference_on_dataset(
        PassThrough(as_dict=True), loader, None, "cpu", autocast_dtype=torch.bfloat16
    )
    assert res["top1"] == pytest.approx(60.0)


def test_group_omitted_when_no_class_in_it():
    logits, labels = _dataset()
    res = compute_classification_metrics(logits, labels, [500, 500, 50, 50])
    assert set(res) & {"many", "medium", "few"} == {"many", "medium"}
    assert res["medium"] == 0.0  # class 2 wrong, class 3 absent
    with pytest.raises(ValueError):
        compute_classification_metrics(logits, labels, [1, 2, 3])


def test_evaluator_reads_thresholds_from_cfg():
    cfg = get_cfg()
    cfg.TEST.MANY_THRESHOLD = 1000
    cfg.TEST.FEW_THRESHOLD = 2
    evaluator = ClassificationEvaluator(cfg, train_counts=[150, 60, 4, 3])
    logits, labels = _dataset()
    evaluator.process(logits[:3], labels[:3])
    evaluator.process(logits[3:], labels[3:])
    res = evaluator.evaluate()
    # Every class is medium now: mean of 50, 100, 0 (class 3 absent).
    assert res["medium"] == pytest.approx(50.0)
    assert "many" not in res and "few" not in res
    evaluator.reset()
    with pytest.raises(ValueError):
        evaluator.evaluate()


def test_gather_is_identity_without_process_group():
    assert gather_predictions is comm.gather_predictions  # the old import path still works
    logits, labels = _dataset()
    out_logits, out_labels = gather_predictions(logits, labels)
    assert out_logits is logits and out_labels is labels


def _gather_worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    n = 3 if rank == 0 else 1  # uneven shards
    logits = torch.full((n, 2), float(rank)) + torch.arange(n).view(-1, 1)
    labels = torch.full((n,), rank)
    all_logits, all_labels = gather_predictions(logits, labels)
    torch.save((all_logits, all_labels), os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_gather_uneven_shards_two_processes(tmp_path):
    mp.spawn(_gather_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    expected_logits = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [1.0, 1.0]])
    for rank in range(2):
        got_logits, got_labels = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(got_logits, expected_logits)
        assert got_labels.tolist() == [0, 0, 0, 1]


RESULTS = {
    "top1": 45.125,
    "top5": 75.0,
    "many": 66.1,
    "medium": 42.0,
    "per_class": [50.0, None, 12.5],
    "ece": 7.449,
    "num_samples": 300,
}


def test_table_columns_values_and_missing_group():
    table = format_results_table(RESULTS, "CIFAR-100-LT test")
    title, header, values = table.split("\n")
    assert title == "CIFAR-100-LT test (300 images)"
    assert header.split() == ["top1", "top5", "many", "medium", "few", "ECE"]
    assert values.split() == ["45.12", "75.00", "66.10", "42.00", "-", "7.45"]
    assert len(header) == len(values)
    # Right-aligned: every column ends at the same offset in both lines.
    ends_h = [
        i
        for i in range(len(header))
        if header[i] != " " and (i + 1 == len(header) or header[i + 1] == " ")
    ]
    ends_v = [
        i
        for i in range(len(values))
        if values[i] != " " and (i + 1 == len(values) or values[i + 1] == " ")
    ]
    assert ends_h == ends_v


def test_save_json_atomic_and_nan_as_null(tmp_path):
    path = tmp_path / "sub" / "results.json"
    save_results_json({**RESULTS, "ece": math.nan, "extra": torch.tensor([1.0, 2.0])}, path)
    loaded = json.loads(path.read_text())
    assert loaded["ece"] is None and loaded["per_class"] == [50.0, None, 12.5]
    assert loaded["extra"] == [1.0, 2.0]
    save_results_json({"top1": 1.0}, path)  # overwrite in place
    assert json.loads(path.read_text()) == {"top1": 1.0}
    assert os.listdir(path.parent) == ["results.json"]  # no temporary file left behind


def test_ties_are_broken_alike_in_top1_and_per_class():
    """Logits with many exact ties (as bf16 gives): top-1 must equal the count-weighted mean
    of the per-class accuracies, i.e. both count the same predicted class per sample."""
    from ride_dive.evaluation.evaluator import compute_classification_metrics

    generator = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 2, (400, 8), generator=generator).float()
    labels = torch.randint(0, 8, (400,), generator=generator)
    results = compute_classification_metrics(logits, labels)
    counts = torch.bincount(labels, minlength=8).tolist()
    weighted = sum(a * n for a, n in zip(results["per_class"], counts)) / sum(counts)
    assert results["top1"] == pytest.approx(weighted)
