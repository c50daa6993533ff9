"""Publishing a finished run: stripped file, hash, manifest entry, MODEL_ZOO.md, round trip."""

import json
import os

import pytest
import torch

from benchmarks.publish import find_zoo_name, publish_run, render_model_zoo_md
from ride_dive import model_zoo
from ride_dive.checkpoint import file_sha256
from ride_dive.config import ConfigError, get_cfg
from ride_dive.model_zoo import Manifest, resources

from .conftest import CLASS_COUNTS, zoo_model

NAME = "FashionMNIST-LT/ce_r32.yaml"
RESULTS = {
    "top1": 61.234567,
    "many": 80.0,
    "medium": 55.5,
    "few": 20.25,
    "ece": 9.0,
    "weights": "final",
    "val": {"top1": 62.0},
}


def fake_run(run_dir, name=NAME, opts=(), results=RESULTS, seed=3):
    """A finished run of packaged config ``name``: config.yaml, results.json and a full
    training checkpoint (optimizer and scheduler state included)."""
    os.makedirs(run_dir, exist_ok=True)
    cfg = get_cfg()
    cfg.merge_from_file(resources.config_path(name))
    cfg.merge_from_list(["SEED", str(seed), "OUTPUT_DIR", str(run_dir), *opts])
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        f.write(cfg.dump())
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(results, f)
    model = zoo_model(name, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 30},
        os.path.join(run_dir, "model_final.pth"),
    )
    with open(os.path.join(run_dir, "log.txt"), "w") as f:
        f.write(
            "[11/22 10:00:00 ride_dive] Command line: tools/train_net.py --config-file "
            f"configs/{name} SEED {seed}\n"
        )
    return model


def test_publish_strips_hashes_and_round_trips(tmp_path):
    model = fake_run(tmp_path / "run")
    out = tmp_path / "upload"
    manifest = Manifest(base_url="file://" + str(out))
    entry = publish_run(str(tmp_path / "run"), str(out), manifest, class_counts=CLASS_COUNTS)

    assert entry.name == NAME  # found from the run's config
    path = out / entry.file
    assert entry.file.startswith("FashionMNIST-LT/ce_r32-") and entry.file.endswith(".pth")
    assert entry.sha256 == file_sha256(str(path)) and entry.sha256[:8] in entry.file
    assert entry.size == path.stat().st_size
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"model", "meta"}  # no optimizer, scheduler or epoch
    assert payload["meta"]["class_counts"] == CLASS_COUNTS
    assert entry.metrics["top1"] == 61.2346 and entry.metrics["val_top1"] == 62.0
    assert entry.metrics["gmacs"] > 0.01  # measured on the model (the results lack it)
    assert entry.params == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6, abs=1e-4)
    assert entry.source["seed"] == 3 and "SEED 3" in entry.source["train_command"]
    assert not list(out.rglob("*.publishing.pth"))

    md = render_model_zoo_md(manifest, "python tools/publish_model_zoo.py run")
    assert f"| `{NAME}` | LinearHead / CrossEntropyLoss | 61.23 | 80.00 | 55.50 | 20.25 |" in md
    assert f"file://{out}/{entry.file}" in md

    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(manifest.dumps())
    loaded = model_zoo.get(
        NAME,
        trained=True,
        device="cpu",
        manifest=str(manifest_path),
        cache=str(tmp_path / "cache"),
        progress=False,
    )
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_a_run_that_changed_a_training_key_is_not_published_under_the_packaged_name(tmp_path):
    fake_run(tmp_path / "run", opts=["SOLVER.BASE_LR", "0.3"])
    cfg = get_cfg()
    cfg.merge_from_file(str(tmp_path / "run" / "config.yaml"))
    with pytest.raises(ConfigError, match=r"SOLVER.BASE_LR: 0.3 in the run vs 0.1"):
        find_zoo_name(cfg, NAME)
    with pytest.raises(ConfigError, match=r"matches no packaged config.*SOLVER.BASE_LR"):
        publish_run(
            str(tmp_path / "run"), str(tmp_path / "out"), Manifest(), class_counts=CLASS_COUNTS
        )
    assert not (tmp_path / "out").exists()


def test_runs_without_results_or_weights_are_refused(tmp_path):
    fake_run(tmp_path / "run")
    os.remove(tmp_path / "run" / "results.json")
    with pytest.raises(FileNotFoundError, match="not a finished run: no results.json"):
        publish_run(str(tmp_path / "run"), str(tmp_path / "out"), Manifest())
    fake_run(tmp_path / "best", results=dict(RESULTS, weights="best (validation)"))
    with pytest.raises(FileNotFoundError, match="model_best.pth is not in the directory"):
        publish_run(str(tmp_path / "best"), str(tmp_path / "out"), Manifest())


def test_republishing_replaces_the_entry(tmp_path):
    manifest = Manifest()
    fake_run(tmp_path / "a", seed=1)
    fake_run(tmp_path / "b", seed=2)
    first = publish_run(
        str(tmp_path / "a"), str(tmp_path / "o"), manifest, class_counts=CLASS_COUNTS
    )
    second = publish_run(
        str(tmp_path / "b"), str(tmp_path / "o"), manifest, class_counts=CLASS_COUNTS
    )
    assert len(manifest) == 1 and manifest.get(NAME).sha256 == second.sha256 != first.sha256


def test_evaluate_takes_the_metrics_from_evaluating_the_published_file(tmp_path, monkeypatch):
    from benchmarks import publish

    fake_run(tmp_path / "run", results=dict(RESULTS, weights="best (validation)"))
    os.rename(tmp_path / "run" / "model_final.pth", tmp_path / "run" / "model_best.pth")
    evaluated = []

    def fake_evaluation(name, weights, output_dir):
        evaluated.append((name, weights))
        return {"top1": 70.0, "many": 1.0, "medium": 2.0, "few": 3.0, "weights": "final"}

    monkeypatch.setattr(publish, "evaluate_published", fake_evaluation)
    entry = publish_run(
        str(tmp_path / "run"),
        str(tmp_path / "out"),
        Manifest(),
        class_counts=CLASS_COUNTS,
        evaluate=True,
    )
    assert evaluated == [(NAME, str(tmp_path / "out" / entry.file))]  # the published file
    assert (entry.metrics["top1"], entry.metrics["few"]) == (70.0, 3.0)
    assert entry.source["metrics_from"] == "re-evaluated at publishing"
    assert entry.source["weights"] == "best (validation)"  # what was published, from the run
