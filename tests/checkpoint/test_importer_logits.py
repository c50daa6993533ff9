"""Converted RIDE / classifier-balancing checkpoints compute the reference networks' logits
(and RIDE's early-exit expert assignment), also through the printed ``--eval-only`` command."""

import collections
import os

import numpy as np
import pytest
import torch

from ride_dive.checkpoint import load_trained_model, safe_torch_load
from ride_dive.checkpoint.importers import convert_checkpoint
from ride_dive.config import ConfigError
from ride_dive.engine import setup_cfg
from ride_dive.evaluation.evaluator import predict_on_dataset
from ride_dive.utils.env import eval_amp_dtype
from tests.checkpoint.importer_setup import (
    BOTTLENECK_OPTS,
    CRT,
    LWS,
    RIDE_CIFAR,
    RIDE_IMAGENET,
    converted_model,
    converter_tool,
    eval_logits,
    printed_command,
    tiny_cfg,
)
from tests.checkpoint.original_files import save_ride
from tests.checkpoint.reference_nets import (
    RefDotProduct,
    RefFeatureResNeXt,
    RefResNetS,
    RefRIDEResNeXt,
    randomize_bn,
)
from tests.conftest import ROOT


@pytest.mark.parametrize("use_norm,experts", [(True, 3), (False, 2)])
def test_ride_cifar_logits_match_reference(tmp_path, use_norm, experts):
    torch.manual_seed(0)
    ref = RefResNetS(num_experts=experts, use_norm=use_norm, s=30.0).eval()
    randomize_bn(ref)
    src, out = str(tmp_path / "RIDE.pth"), str(tmp_path / "out.pth")
    save_ride(
        src,
        ref,
        args={
            "num_experts": experts,
            "use_norm": use_norm,
            "reduce_dimension": True,
            "num_classes": 10,
        },
    )
    head = [] if use_norm else ["MODEL.HEAD.NAME", "'LinearHead'"]
    cfg = tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", str(experts), *head)
    result = convert_checkpoint(src, "ride", cfg, out)

    meta = safe_torch_load(out)["meta"]  # plain weights-only file
    assert meta["converted_from"] == "ride" and meta["num_classes"] == 10
    assert meta["file"]["num_experts"] == experts and len(meta["source_sha256"]) == 64
    assert "parse_config.ConfigParser" in meta["inert_globals"]
    assert "pathlib.PosixPath" in meta["inert_globals"]
    assert ("heads.0.weight" if use_norm else "heads.0.fc.bias") in result["model"]
    x = torch.randn(6, 3, 16, 16)
    # Checkpointer.load is strict: every key and shape of the config's model is checked.
    model = converted_model(
        tiny_cfg(
            RIDE_CIFAR, "MODEL.NUM_CLASSES", "10", "MODEL.RIDE.NUM_EXPERTS", str(experts), *head
        ),
        out,
    )
    torch.testing.assert_close(eval_logits(model, x), ref(x), atol=1e-5, rtol=1e-5)


def test_ride_expert_assignment_early_exit_matches_reference(tmp_path):
    torch.manual_seed(1)
    ref = RefResNetS(num_experts=3, top_k=5).eval()
    randomize_bn(ref)
    x = torch.randn(16, 3, 16, 16)
    with torch.no_grad():  # centre router 0 so that about half the samples go on
        shared = ref.trunk(x)
        logits, fmap = ref.expert(shared, 0)
        # Midway between the two middle logits: no sample sits on the threshold itself,
        # where float rounding (ours vs the reference's order of operations) decides.
        middle = ref.pred_help(fmap, logits, 0).flatten().sort().values[7:9]
        ref.expert_help_pred_fc.bias -= middle.mean()
    src, out = str(tmp_path / "RIDE_EA.pth"), str(tmp_path / "out.pth")
    save_ride(src, ref, args={"num_experts": 3, "top_choices_num": 5, "use_norm": True})
    opts = [
        "MODEL.RIDE.NUM_EXPERTS",
        "3",
        "MODEL.ROUTER.ENABLED",
        "True",
        "MODEL.ROUTER.TOP_K",
        "5",
        "MODEL.ROUTER.THRESHOLD",
        "0.5",
    ]
    convert_checkpoint(src, "ride", tiny_cfg(RIDE_CIFAR, *opts), out)
    model = converted_model(tiny_cfg(RIDE_CIFAR, *opts, "MODEL.NUM_CLASSES", "10"), out).eval()
    with torch.no_grad():
        mine = model(x)
        theirs, used = ref(x)
    assert len(set(used.view(-1).tolist())) > 1  # early exit actually happened
    assert mine["experts_used"].tolist() == used.view(-1).tolist()
    torch.testing.assert_close(mine["logits"], theirs, atol=1e-5, rtol=1e-5)

    with pytest.raises(ConfigError, match="MODEL.ROUTER.TOP_K 5"):
        convert_checkpoint(src, "ride", tiny_cfg(RIDE_CIFAR, *opts[:4], "MODEL.ROUTER.TOP_K", "7"))
    # A config without a router would silently lose the early exit: only on request.
    with pytest.raises(
        ConfigError,
        match=r"router\) weights but MODEL.ROUTER.ENABLED is False.*"
        r"--drop-router.*ride_4e_r32_if100_router.yaml MODEL.RIDE.NUM_EXPERTS 3 "
        r"MODEL.ROUTER.TOP_K 5",
    ):
        convert_checkpoint(src, "ride", tiny_cfg(RIDE_CIFAR, *opts[:2]))
    plain = convert_checkpoint(src, "ride", tiny_cfg(RIDE_CIFAR, *opts[:2]), drop_router=True)
    assert not any(k.startswith("router.") for k in plain["model"])
    assert any("--drop-router" in note for note in plain["meta"]["notes"])


def test_ride_resnext_logits_match_reference(tmp_path):
    torch.manual_seed(2)
    ref = RefRIDEResNeXt(num_experts=2).eval()
    randomize_bn(ref)
    src, out = str(tmp_path / "RIDE_x50.pth"), str(tmp_path / "out.pth")
    save_ride(src, ref, args={"num_experts": 2, "use_norm": True, "s": 30})
    cfg = tiny_cfg(RIDE_IMAGENET, "MODEL.RIDE.NUM_EXPERTS", "2", "MODEL.NUM_CLASSES", "10")
    convert_checkpoint(src, "ride", cfg, out)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(
        eval_logits(converted_model(cfg, out), x), ref(x), atol=1e-5, rtol=1e-5
    )
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME 'RIDEResNeXt50'"):
        convert_checkpoint(
            src,
            "ride",
            tiny_cfg(
                RIDE_IMAGENET,
                "MODEL.RIDE.NUM_EXPERTS",
                "2",
                "MODEL.BACKBONE.NAME",
                "'RIDEResNet50'",
                "MODEL.RESNET.GROUPS",
                "1",
            ),
        )


@pytest.mark.parametrize("lws", [False, True])
def test_decoupling_logits_match_reference(tmp_path, lws):
    torch.manual_seed(3)
    feat, clf = RefFeatureResNeXt().eval(), RefDotProduct(lws=lws).eval()
    randomize_bn(feat)
    feat_state = torch.nn.DataParallel(feat).state_dict()
    if lws:  # files from before PyTorch 0.4.1 lack the BN counters
        feat_state = collections.OrderedDict(
            (k, v) for k, v in feat_state.items() if not k.endswith("num_batches_tracked")
        )
    src, out = str(tmp_path / "final_model_checkpoint.pth"), str(tmp_path / "out.pth")
    torch.save(
        {
            "epoch": 90,
            "best_epoch": 88,
            "best_acc": np.float64(0.5),
            "centroids": None,
            "state_dict_best": {
                "feat_model": feat_state,
                "classifier": torch.nn.DataParallel(clf).state_dict(),
            },
        },
        src,
        _use_new_zipfile_serialization=False,
    )  # the format of that era
    cfg = tiny_cfg(LWS if lws else CRT, "MODEL.NUM_CLASSES", "10")
    meta = convert_checkpoint(src, "decoupling", cfg, out)["meta"]
    assert meta["file"]["best_epoch"] == 88 and meta["file"]["groups"] == 2
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = clf(feat(x)[0])[0]
    torch.testing.assert_close(
        eval_logits(converted_model(cfg, out), x), expected, atol=1e-5, rtol=1e-5
    )
    if lws:
        with pytest.raises(ConfigError, match="set it to 'LWSHead'"):
            convert_checkpoint(src, "decoupling", tiny_cfg(CRT))


def test_ride_imagenet_expert_assignment_matches_reference_through_the_printed_command(
    tmp_path, capsys
):
    """An ImageNet-LT RIDE ResNeXt with routers, converted with the router config, loaded
    as the printed ``--eval-only`` command loads it: RIDE's fp32 logits and exits."""
    torch.manual_seed(8)
    ref = RefRIDEResNeXt(num_experts=3, top_k=5).eval()
    randomize_bn(ref)
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():  # centre router 0 so that about half the samples go on
        logits, fmap = ref.expert(ref.trunk(x), 0)
        middle = ref.pred_help(fmap, logits, 0).flatten().sort().values[7:9]
        ref.expert_help_pred_fc.bias -= middle.mean()
    src, out = str(tmp_path / "RIDE_x50_EA.pth"), str(tmp_path / "out.pth")
    save_ride(src, ref, args={"num_experts": 3, "top_choices_num": 5, "use_norm": True, "s": 30})
    router_cfg = os.path.join(ROOT, "configs/ImageNet-LT/ride_4e_x50_router.yaml")
    opts = [*BOTTLENECK_OPTS, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.ROUTER.TOP_K", "5"]
    assert (
        converter_tool().cli(["--from", "ride", src, "--config-file", router_cfg, out, *opts]) == 0
    )
    command = printed_command(capsys.readouterr().out)
    config = command[command.index("--config-file") + 1]
    overrides = command[command.index("--eval-only") + 1 :]
    # What train_net.py --eval-only does with that command: build, load for evaluation, run
    # the evaluator at the evaluation precision (TEST.AMP), not the recipe's bf16 training.
    cfg = setup_cfg(config, overrides)
    assert cfg.SOLVER.AMP.ENABLED and eval_amp_dtype(cfg) is None
    model = load_trained_model(cfg, class_counts=[1] * 10)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, torch.zeros(16, dtype=torch.long)), batch_size=16
    )
    evaluated, _ = predict_on_dataset(model, loader, "cpu", eval_amp_dtype(cfg))
    with torch.no_grad():
        mine = model(x)
        theirs, used = ref(x)
    assert mine["logits"].dtype == torch.float32
    torch.testing.assert_close(evaluated, theirs, atol=1e-5, rtol=1e-5)
    assert len(set(used.view(-1).tolist())) > 1  # early exit actually happened
    assert mine["experts_used"].tolist() == used.view(-1).tolist()
    torch.testing.assert_close(mine["logits"], theirs, atol=1e-5, rtol=1e-5)
