"""Decoupled second stages (docs/METHODS.md 5): cRT, LWS, tau-norm and NCM as configs."""

import json
import os
import subprocess
import sys

import pytest
import torch

from ride_dive.config import ConfigError
from ride_dive.engine import DefaultTrainer, setup_cfg
from ride_dive.evaluation import select_tau, tau_norm_sweep
from ride_dive.modeling import LinearHead, NCMHead, build_model
from ride_dive.utils.logger import setup_logger
from tests.conftest import RIDE_OVERRIDES, ROOT, tiny_overrides

setup_logger("", rank=1)  # quiet

STAGE2 = {
    "MODEL.BACKBONE.FREEZE": True,
    "DATALOADER.SAMPLER": "ClassAwareSampler",
    "SOLVER.MAX_EPOCHS": 2,
    "SOLVER.WARMUP_EPOCHS": 0,
}


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """A 2-epoch CE model: the path of its model_final.pth."""
    out = tmp_path_factory.mktemp("stage1")
    cfg = setup_cfg("", tiny_overrides(out, **{"SOLVER.MAX_EPOCHS": 2}))
    DefaultTrainer(cfg).train()
    return os.path.join(out, "model_final.pth")


def _stage1_state(path):
    return torch.load(path, weights_only=True)["model"]


def _backbone_unchanged(model, saved):
    for key, value in model.state_dict().items():
        if key.startswith("backbone."):  # weights, BN running statistics, batch counters
            assert torch.equal(value, saved[key]), key


def _count_resets(head):
    """Wrap ``head.reset_parameters`` so that its calls are counted (and still made)."""
    calls = []
    original = head.reset_parameters

    def counted():
        calls.append(original())

    head.reset_parameters = counted
    return calls


def test_crt_reinitialises_the_classifier_and_leaves_the_backbone(stage1, tiny_cfg):
    saved = _stage1_state(stage1)
    trainer = DefaultTrainer(
        tiny_cfg(**STAGE2, **{"MODEL.WEIGHTS": stage1, "MODEL.HEAD.REINIT": True})
    )
    resets = _count_resets(trainer.model.head)
    trainer.resume_or_load(resume=False)
    # Loading is all --eval-only does: it sees the stage-1 classifier, not a fresh one.
    assert torch.equal(trainer.model.head.fc.weight, saved["head.fc.weight"]) and not resets
    torch.manual_seed(123)
    expected = torch.nn.Linear(*reversed(saved["head.fc.weight"].shape)).weight
    torch.manual_seed(123)
    trainer.trainer.hooks[0].before_train()  # PrepareForTraining, what train() runs first
    assert len(resets) == 1  # the classifier is fresh before the first step
    assert torch.equal(trainer.model.head.fc.weight, expected)
    _backbone_unchanged(trainer.model, saved)
    trainer.train()
    assert len(resets) == 2  # train() prepared again (the hook's run above was by hand)
    _backbone_unchanged(trainer.model, saved)
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable == {"head.fc.weight", "head.fc.bias"}


def test_crt_resumed_keeps_its_trained_classifier(stage1, tiny_cfg, tmp_path):
    overrides = {
        **STAGE2,
        "MODEL.WEIGHTS": stage1,
        "MODEL.HEAD.REINIT": True,
        "SOLVER.CHECKPOINT_PERIOD": 1,
    }
    first = DefaultTrainer(tiny_cfg(**{**overrides, "SOLVER.MAX_EPOCHS": 1}, output_dir=tmp_path))
    first.resume_or_load(resume=True)
    first.train()
    trained = first.model.head.fc.weight.detach().clone()
    again = DefaultTrainer(tiny_cfg(**overrides, output_dir=tmp_path))
    resets = _count_resets(again.model.head)
    again.resume_or_load(resume=True)
    assert again.resumed and torch.equal(again.model.head.fc.weight, trained)
    again.train()
    assert not resets  # a resumed cRT run continues its classifier


def test_lws_changes_only_the_scales(stage1, tiny_cfg):
    saved = _stage1_state(stage1)
    trainer = DefaultTrainer(
        tiny_cfg(**STAGE2, **{"MODEL.WEIGHTS": stage1, "MODEL.HEAD.NAME": "LWSHead"})
    )
    trainer.resume_or_load(resume=False)  # the stage-1 file has no scales: allowed
    trainer.train()
    state = trainer.model.state_dict()
    for key, value in saved.items():
        assert torch.equal(state[key], value), key
    assert not torch.equal(state["head.scales"], torch.ones(10))
    # The scale multiplies the whole logit, bias included.
    x = torch.randn(3, trainer.model.head.fc.in_features)
    head = trainer.model.head
    torch.testing.assert_close(head(x), (x @ head.fc.weight.t() + head.fc.bias) * head.scales)


def test_ncm_logits_by_hand():
    head = NCMHead(in_features=2, num_classes=2)
    features = torch.tensor([[3.0, 1.0], [5.0, 1.0], [1.0, 3.0], [1.0, 5.0]])
    head.fit(features, torch.tensor([0, 0, 1, 1]))
    # center (2.5, 2.5); centred + normalised: (1,-3)/sqrt10, (5,-3)/sqrt34, mirrored.
    g = [[0.5 / 1.5811388, -1.5 / 1.5811388], [2.5 / 2.9154759, -1.5 / 2.9154759]]
    mu0 = [(g[0][0] + g[1][0]) / 2, (g[0][1] + g[1][1]) / 2]
    mu1 = [mu0[1], mu0[0]]
    x = torch.tensor([[4.0, 0.0]])
    gx = [1.5 / 2.9154759, -2.5 / 2.9154759]
    expected = [-sum((a - b) ** 2 for a, b in zip(gx, mu)) for mu in (mu0, mu1)]
    assert head.eval()(x)[0].tolist() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="every class"):
        NCMHead(in_features=2, num_classes=3).fit(features, torch.tensor([0, 0, 1, 1]))
    with pytest.raises(RuntimeError, match="fit"):
        NCMHead(in_features=2, num_classes=2).eval()(x)


def test_ncm_is_evaluation_only_and_reads_a_stage1_checkpoint(stage1, tiny_cfg):
    cfg = tiny_cfg(**{"MODEL.WEIGHTS": stage1, "MODEL.HEAD.NAME": "NCMHead"})
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)  # --eval-only: ignores head.fc.*
    results = trainer.test()
    assert bool(trainer.model.head.fitted) and 0.0 <= results["top1"] <= 100.0
    with pytest.raises(ConfigError, match="--eval-only"):
        DefaultTrainer(cfg).train()


def test_tau_norm_sweep_matches_the_formula_and_picks_the_best_row():
    torch.manual_seed(0)
    head = LinearHead(in_features=4, num_classes=3)
    features, labels = torch.randn(30, 4), torch.randint(0, 3, (30,))
    rows = tau_norm_sweep(head, features, labels, [50, 20, 5], taus=[0.0, 1.0])
    w = head.fc.weight.detach()
    for row, tau in zip(rows, (0.0, 1.0)):
        # tau = 0 is the raw classifier without its bias.
        logits = features @ (w / w.norm(dim=1, keepdim=True) ** tau).t()
        assert row["top1"] == pytest.approx(
            100.0 * float((logits.argmax(1) == labels).float().mean())
        )
    assert head.tau == -1.0 and head.training  # restored
    best = select_tau(
        [
            {"tau": 0.0, "top1": 50.0},
            {"tau": 0.4, "top1": 61.0},
            {"tau": 0.9, "top1": 61.0},
            {"tau": 1.2, "top1": 55.0},
        ]
    )
    assert best["tau"] == 0.4  # the best top-1, the smaller tau on ties


def _tau_tool(out, *extra):
    return subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tools", "tau_norm.py"),
            "--taus",
            "0,0.5,1",
            *tiny_overrides(out, **dict(zip(extra[0::2], extra[1::2]))),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_tau_norm_tool_chooses_on_validation_and_says_when_it_cannot(stage1, tmp_path):
    r = _tau_tool(
        tmp_path / "val",
        "MODEL.WEIGHTS",
        stage1,
        "DATASETS.VAL_SOURCE",
        "test",
        "DATASETS.VAL_PER_CLASS",
        2,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.load(open(tmp_path / "val" / "tau_norm.json"))
    assert report["selected_on"] == "val"
    best = max(report["sweep"], key=lambda row: (row["top1"], -row["tau"]))
    assert report["tau"] == best["tau"] == report["test"]["tau"]
    assert "NO VALIDATION SPLIT" not in r.stderr
    assert os.listdir(tmp_path / "val") == ["tau_norm.json"]  # no results.json, no config
    r = _tau_tool(tmp_path / "noval", "MODEL.WEIGHTS", stage1)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.load(open(tmp_path / "noval" / "tau_norm.json"))["selected_on"] == "test"
    assert "NO VALIDATION SPLIT" in r.stderr
    r = _tau_tool(tmp_path / "nothing")
    assert r.returncode == 2 and "MODEL.WEIGHTS" in r.stderr and "Traceback" not in r.stderr


def test_tau_norm_sweep_is_an_evaluator_of_any_run(stage1, tiny_cfg, tmp_path):
    cfg = tiny_cfg(
        **{
            "MODEL.WEIGHTS": stage1,
            "TEST.TAU_NORM_SWEEP": True,
            "TEST.TAU_NORM_TAUS": "[0.0, 1.0]",
            "DATASETS.VAL_SOURCE": "test",
            "DATASETS.VAL_PER_CLASS": 2,
        },
        output_dir=tmp_path,
    )
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.test()
    report = results["tau_norm"]
    assert report["selected_on"] == "val"
    assert [row["tau"] for row in report["sweep"]] == [0.0, 1.0]
    assert (
        report["test"]["tau"]
        == report["tau"]
        == max(report["sweep"], key=lambda row: (row["top1"], -row["tau"]))["tau"]
    )
    assert json.load(open(tmp_path / "tau_norm.json"))["test"] == pytest.approx(report["test"])
    assert json.load(open(tmp_path / "results.json"))["tau_norm"]["tau"] == report["tau"]
    # The plain metrics of the same run are those of the untouched head (tau < 0).
    assert trainer.model.head.tau == -1.0
    ride = {
        **RIDE_OVERRIDES,
        "MODEL.RIDE.NUM_EXPERTS": 2,
        "TEST.TAU_NORM_SWEEP": True,
        "MODEL.HEAD.NAME": "LinearHead",
    }
    with pytest.raises(ConfigError, match="TEST.TAU_NORM_SWEEP needs a model with one"):
        DefaultTrainer(tiny_cfg(**ride, output_dir=tmp_path / "ride"))


def test_ride_crt_reinitialises_every_expert_head_and_ncm_is_single_head(tiny_cfg, tmp_path):
    ride = {
        **RIDE_OVERRIDES,
        "MODEL.LOSS.RIDE.BASE_LOSS": "CrossEntropyLoss",
        "MODEL.RIDE.NUM_EXPERTS": 2,
    }
    first = DefaultTrainer(
        tiny_cfg(
            **ride,
            **{"SOLVER.MAX_EPOCHS": 1, "SOLVER.WARMUP_EPOCHS": 0},
            output_dir=tmp_path / "s1",
        )
    )
    first.train()
    weights = str(tmp_path / "s1" / "model_final.pth")
    saved = _stage1_state(weights)
    crt = DefaultTrainer(
        tiny_cfg(
            **ride,
            **STAGE2,
            **{"MODEL.WEIGHTS": weights, "MODEL.HEAD.REINIT": True},
            output_dir=tmp_path / "crt",
        )
    )
    resets = [_count_resets(head) for head in crt.model.heads]
    crt.resume_or_load(resume=False)
    crt.train()
    assert [len(r) for r in resets] == [1, 1]  # every expert's head, once
    _backbone_unchanged(crt.model, saved)
    with pytest.raises(ConfigError, match="evaluation-only"):
        build_model(tiny_cfg(**{**ride, "MODEL.HEAD.NAME": "NCMHead"}), [10] * 10)
