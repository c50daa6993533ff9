"""Importers of original RIDE / classifier-balancing checkpoints: the converted model computes
the reference networks' logits, foreign pickles run nothing, and every misuse gets a clear
one-paragraph error."""

import builtins
import collections
import json
import os
import pickletools
import re
import shlex
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from ride_dive.checkpoint import (
    Checkpointer,
    CheckpointError,
    load_trained_model,
    safe_torch_load,
)
from ride_dive.checkpoint.importers import convert_checkpoint
from ride_dive.checkpoint.model_state import CheckpointMismatchError
from ride_dive.config import ConfigError
from ride_dive.engine import setup_cfg
from ride_dive.evaluation.evaluator import predict_on_dataset
from ride_dive.modeling import build_model
from ride_dive.utils.env import eval_amp_dtype
from tests.checkpoint.original_files import save_ride
from tests.checkpoint.reference_nets import (
    RefDotProduct,
    RefFeatureResNeXt,
    RefResNetS,
    RefRIDEResNeXt,
    randomize_bn,
    ride_state_dict,
)
from tests.conftest import ROOT

RIDE_CIFAR = os.path.join(ROOT, "configs/CIFAR100-LT/ride_4e_r32_if100.yaml")
RIDE_IMAGENET = os.path.join(ROOT, "configs/ImageNet-LT/ride_4e_x50.yaml")
CRT = os.path.join(ROOT, "configs/ImageNet-LT/crt_x50.yaml")
LWS = os.path.join(ROOT, "configs/ImageNet-LT/lws_x50.yaml")
# Tiny versions of the published architectures: RIDE ResNet-32 at a quarter width (stem 4,
# experts 6/12 channels), bottleneck networks at 1/8 width with 2 groups of 16.
CIFAR_OPTS = ["MODEL.BACKBONE.WIDTH_MULT", "0.25", "MODEL.DEVICE", "'cpu'"]
BOTTLENECK_OPTS = [
    "MODEL.BACKBONE.WIDTH_MULT",
    "0.125",
    "MODEL.RESNET.GROUPS",
    "2",
    "MODEL.RESNET.WIDTH_PER_GROUP",
    "16",
    "MODEL.DEVICE",
    "'cpu'",
]


def _cfg(config_file, *opts):
    return setup_cfg(
        config_file, [*CIFAR_OPTS, *opts] if "CIFAR" in config_file else [*BOTTLENECK_OPTS, *opts]
    )


def _logits(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    return out if isinstance(out, torch.Tensor) else out["logits"]


def _converted_model(cfg, path):
    """A fresh model from ``cfg`` loaded from ``path`` the way ``--eval-only`` loads it."""
    model = build_model(cfg, class_counts=[1] * 10)
    Checkpointer(model, save_dir=os.path.dirname(path)).load(path, checkpointables=[])
    return model


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
    cfg = _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", str(experts), *head)
    result = convert_checkpoint(src, "ride", cfg, out)

    meta = safe_torch_load(out)["meta"]  # plain weights-only file
    assert meta["converted_from"] == "ride" and meta["num_classes"] == 10
    assert meta["file"]["num_experts"] == experts and len(meta["source_sha256"]) == 64
    assert "parse_config.ConfigParser" in meta["inert_globals"]
    assert "pathlib.PosixPath" in meta["inert_globals"]
    assert ("heads.0.weight" if use_norm else "heads.0.fc.bias") in result["model"]
    x = torch.randn(6, 3, 16, 16)
    # Checkpointer.load is strict: every key and shape of the config's model is checked.
    model = _converted_model(
        _cfg(RIDE_CIFAR, "MODEL.NUM_CLASSES", "10", "MODEL.RIDE.NUM_EXPERTS", str(experts), *head),
        out,
    )
    torch.testing.assert_close(_logits(model, x), ref(x), atol=1e-5, rtol=1e-5)


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
    convert_checkpoint(src, "ride", _cfg(RIDE_CIFAR, *opts), out)
    model = _converted_model(_cfg(RIDE_CIFAR, *opts, "MODEL.NUM_CLASSES", "10"), out).eval()
    with torch.no_grad():
        mine = model(x)
        theirs, used = ref(x)
    assert len(set(used.view(-1).tolist())) > 1  # early exit actually happened
    assert mine["experts_used"].tolist() == used.view(-1).tolist()
    torch.testing.assert_close(mine["logits"], theirs, atol=1e-5, rtol=1e-5)

    with pytest.raises(ConfigError, match="MODEL.ROUTER.TOP_K 5"):
        convert_checkpoint(src, "ride", _cfg(RIDE_CIFAR, *opts[:4], "MODEL.ROUTER.TOP_K", "7"))
    # A config without a router would silently lose the early exit: only on request.
    with pytest.raises(
        ConfigError,
        match=r"router\) weights but MODEL.ROUTER.ENABLED is False.*"
        r"--drop-router.*ride_4e_r32_if100_router.yaml MODEL.RIDE.NUM_EXPERTS 3 "
        r"MODEL.ROUTER.TOP_K 5",
    ):
        convert_checkpoint(src, "ride", _cfg(RIDE_CIFAR, *opts[:2]))
    plain = convert_checkpoint(src, "ride", _cfg(RIDE_CIFAR, *opts[:2]), drop_router=True)
    assert not any(k.startswith("router.") for k in plain["model"])
    assert any("--drop-router" in note for note in plain["meta"]["notes"])


def test_ride_resnext_logits_match_reference(tmp_path):
    torch.manual_seed(2)
    ref = RefRIDEResNeXt(num_experts=2).eval()
    randomize_bn(ref)
    src, out = str(tmp_path / "RIDE_x50.pth"), str(tmp_path / "out.pth")
    save_ride(src, ref, args={"num_experts": 2, "use_norm": True, "s": 30})
    cfg = _cfg(RIDE_IMAGENET, "MODEL.RIDE.NUM_EXPERTS", "2", "MODEL.NUM_CLASSES", "10")
    convert_checkpoint(src, "ride", cfg, out)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(_logits(_converted_model(cfg, out), x), ref(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME 'RIDEResNeXt50'"):
        convert_checkpoint(
            src,
            "ride",
            _cfg(
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
    cfg = _cfg(LWS if lws else CRT, "MODEL.NUM_CLASSES", "10")
    meta = convert_checkpoint(src, "decoupling", cfg, out)["meta"]
    assert meta["file"]["best_epoch"] == 88 and meta["file"]["groups"] == 2
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = clf(feat(x)[0])[0]
    torch.testing.assert_close(
        _logits(_converted_model(cfg, out), x), expected, atol=1e-5, rtol=1e-5
    )
    if lws:
        with pytest.raises(ConfigError, match="set it to 'LWSHead'"):
            convert_checkpoint(src, "decoupling", _cfg(CRT))


def test_a_config_that_names_os_functions_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_ride(
        "evil.pth", RefResNetS(num_experts=2).eval(), payload=(os.system, ("touch SENTINEL",))
    )
    with pytest.raises(CheckpointError, match=r"names posix.system.*nothing in it was executed"):
        convert_checkpoint("evil.pth", "ride", _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2"))
    assert not os.path.exists("SENTINEL")


def test_an_unknown_function_in_the_config_becomes_inert(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hooks = types.ModuleType("experiment_hooks")

    def record(path):  # what a real unpickler would call: it creates the sentinel
        open(path, "w").close()

    record.__module__, record.__qualname__ = "experiment_hooks", "record"
    hooks.record = record
    ref = RefResNetS(num_experts=2).eval()
    monkeypatch.setitem(sys.modules, "experiment_hooks", hooks)
    save_ride("hooked.pth", ref, payload=(record, ("SENTINEL",)))
    monkeypatch.delitem(sys.modules, "experiment_hooks")  # the loader must not find it
    result = convert_checkpoint(
        "hooked.pth", "ride", _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2")
    )
    assert not os.path.exists("SENTINEL")
    assert "experiment_hooks.record" in result["meta"]["inert_globals"]
    x = torch.randn(2, 3, 16, 16)
    model = build_model(
        _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2", "MODEL.NUM_CLASSES", "10"), [1] * 10
    )
    model.load_state_dict(result["model"])
    torch.testing.assert_close(_logits(model, x), ref(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(CheckpointError):  # the project's own loader still refuses it
        safe_torch_load("hooked.pth")


def test_a_config_that_would_exec_code_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ref = RefResNetS(num_experts=2).eval()
    save_ride("evil.pth", ref, payload=(builtins.exec, ("open('SENTINEL', 'w').close()",)))
    with pytest.raises(CheckpointError, match=r"names builtins.exec.*nothing in it was executed"):
        convert_checkpoint("evil.pth", "ride", _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2"))
    assert not os.path.exists("SENTINEL")


def _py2_pickle(module: str, name: str) -> bytes:
    """``{"state_dict": module.name("touch SENTINEL")}`` as Python 2's pickle (protocol 2)
    writes it: GLOBAL names the callable in Python 2 spelling, then REDUCE calls it."""
    return (
        b"\x80\x02}q\x00U\nstate_dictq\x01c"
        + f"{module}\n{name}\n".encode()
        + b"q\x02U\x0etouch SENTINELq\x03\x85q\x04Rq\x05s."
    )


@pytest.mark.parametrize(
    "module,name,named",
    [
        ("commands", "Popen", "commands.Popen (that is, subprocess.Popen)"),
        ("commands", "getoutput", "commands.getoutput (that is, subprocess.getoutput)"),
        ("popen2", "popen3", "popen2.popen3"),
        ("__builtin__", "eval", "builtins.eval"),  # torch maps __builtin__ itself
        ("__builtin__", "exec", "builtins.exec"),
        ("__builtin__", "getattr", "builtins.getattr"),
        ("posix", "system", "posix.system"),
    ],
)
def test_python2_spellings_of_dangerous_globals_are_refused(
    tmp_path, monkeypatch, module, name, named
):
    monkeypatch.chdir(tmp_path)
    data = _py2_pickle(module, name)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    assert ("GLOBAL", f"{module} {name}") in ops and ("REDUCE", None) in ops  # well-formed
    with open("py2.pth", "wb") as f:
        f.write(data)
    cfg = _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2")
    with pytest.raises(CheckpointError, match="tampered") as info:
        convert_checkpoint("py2.pth", "ride", cfg)
    assert f"names {named}," in str(info.value)
    assert "nothing in it was executed" in str(info.value)
    # MODEL.WEIGHTS refuses it the same way, naming the global.
    shown = named.split(" ")[0]
    with pytest.raises(CheckpointError, match=rf"names {re.escape(shown)}.*tampered"):
        Checkpointer(build_model(cfg, [1] * 10), "").load("py2.pth")
    assert not os.path.exists("SENTINEL")


def test_commands_popen_in_a_zip_checkpoint_is_refused(tmp_path, monkeypatch):
    """torch's own loader keeps the name ``commands.Popen`` (it does not map ``commands``),
    so only the converter's refusal list stands between it and an inert stand-in."""
    monkeypatch.chdir(tmp_path)
    commands = types.ModuleType("commands")

    def Popen(cmd):  # noqa: N802 - the name under which the pickle refers to it
        open("SENTINEL", "w").close()

    Popen.__module__, Popen.__qualname__ = "commands", "Popen"
    commands.Popen = Popen

    class Payload:
        def __reduce__(self):
            return (Popen, ("touch SENTINEL",))

    monkeypatch.setitem(sys.modules, "commands", commands)
    torch.save({"state_dict": {}, "config": Payload()}, "zip.pth", pickle_protocol=2)
    monkeypatch.delitem(sys.modules, "commands")
    with pytest.raises(
        CheckpointError, match=r"names commands\.Popen \(that is, subprocess\.Popen\)"
    ):
        convert_checkpoint("zip.pth", "ride", _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2"))
    assert not os.path.exists("SENTINEL")


@pytest.fixture(scope="module")
def ride_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ride") / "RIDE.pth")
    torch.manual_seed(4)
    save_ride(path, RefResNetS(num_experts=3), args={"num_experts": 3})
    return path


def test_errors_are_specific(tmp_path, ride_file):
    cfg = _cfg(RIDE_CIFAR)  # 4 experts
    with pytest.raises(
        ConfigError,
        match=r"file has 3 experts but the config builds 4: "
        r"set MODEL.RIDE.NUM_EXPERTS 3",
    ):
        convert_checkpoint(ride_file, "ride", cfg)
    with pytest.raises(ConfigError, match=r"Unknown checkpoint format 'rdie'.*Did you mean 'ride'"):
        convert_checkpoint(ride_file, "rdie", cfg)
    with pytest.raises(FileNotFoundError, match="not found"):
        convert_checkpoint(str(tmp_path / "nope.pth"), "ride", cfg)
    with pytest.raises(
        CheckpointError,
        match=r"not a classifier-balancing.*keys \[arch, epoch, "
        r"state_dict.*use --from ride",
    ):
        convert_checkpoint(ride_file, "decoupling", _cfg(CRT))
    three = _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3")
    with pytest.raises(ConfigError, match="MODEL.NUM_CLASSES is 20: set it to 10"):
        convert_checkpoint(
            ride_file,
            "ride",
            _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.NUM_CLASSES", "20"),
        )
    with pytest.raises(CheckpointMismatchError, match=r"backbone\.layer3s\.0\.0\.conv1\.weight"):
        convert_checkpoint(
            ride_file,
            "ride",
            _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.RIDE.EXPERT_WIDTHS", "[24, 64]"),
        )
    with pytest.raises(ConfigError, match="MODEL.HEAD.COSINE_SCALE is 16: set it to 30"):
        convert_checkpoint(
            ride_file,
            "ride",
            _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.HEAD.COSINE_SCALE", "16.0"),
        )
    with pytest.raises(ConfigError, match="MODEL.META_ARCHITECTURE 'RIDE'"):
        convert_checkpoint(ride_file, "ride", _cfg(CRT))
    (tmp_path / "garbage.pth").write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(CheckpointError, match="nothing in it was executed"):
        convert_checkpoint(str(tmp_path / "garbage.pth"), "ride", three)
    torch.save({"model": {"w": torch.ones(1)}}, str(tmp_path / "ours.pth"))
    with pytest.raises(CheckpointError, match="ride_dive checkpoint, which needs no conversion"):
        convert_checkpoint(str(tmp_path / "ours.pth"), "ride", three)
    option_b = str(tmp_path / "option_b.pth")
    save_ride(option_b, RefResNetS(num_experts=3, option="B"))
    with pytest.raises(
        CheckpointMismatchError,
        match=r"1x1-convolution \(option B\) shortcuts "
        r"but RIDEResNet32 builds parameter-free",
    ):
        convert_checkpoint(option_b, "ride", three)


def _tool_module():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import convert_checkpoint as tool_module
    finally:
        sys.path.pop(0)
    return tool_module


def _printed_command(stdout: str, prefix: str = "Evaluate: ") -> list:
    line = next(ln for ln in stdout.splitlines() if ln.startswith(prefix))
    return shlex.split(line[len(prefix) :])


def test_cli_end_to_end(tmp_path, ride_file, capsys):
    tool = os.path.join(ROOT, "tools", "convert_checkpoint.py")
    out = str(tmp_path / "out.pth")
    ok = subprocess.run(
        [
            sys.executable,
            tool,
            "--from",
            "ride",
            ride_file,
            "--config-file",
            RIDE_CIFAR,
            out,
            *CIFAR_OPTS,
            "MODEL.RIDE.NUM_EXPERTS",
            "3",
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
    )
    assert ok.returncode == 0, ok.stderr
    assert "3 experts" in ok.stdout and "WARNING" not in ok.stdout + ok.stderr
    assert safe_torch_load(out)["meta"]["source"] == ride_file
    # The printed evaluation command carries the overrides of the conversion (without
    # them the config builds 4 experts and the file does not fit) ...
    command = _printed_command(ok.stdout)
    assert command[:2] == ["python", "tools/train_net.py"] and "--eval-only" in command
    assert command[-2:] == ["MODEL.WEIGHTS", out]
    assert command[command.index("MODEL.RIDE.NUM_EXPERTS") + 1] == "3"
    assert command[command.index("MODEL.DEVICE") + 1] == "'cpu'"  # quoting survives
    # ... and works as printed, with only the tiny synthetic test split added.
    results = tmp_path / "eval" / "results.json"
    evaluated = subprocess.run(
        [sys.executable, os.path.join(ROOT, command[1]), *command[2:]]
        + [
            "DATASETS.NAME",
            "SyntheticLT",
            "DATASETS.SYNTHETIC.NUM_CLASSES",
            "10",
            "DATASETS.MAX_PER_CLASS",
            "20",
            "DATASETS.IMBALANCE_FACTOR",
            "10",
            "INPUT.CROP_SIZE",
            "16",
            "OUTPUT_DIR",
            str(results.parent),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert 0 <= json.loads(results.read_text())["top1"] <= 100

    code = _tool_module().cli(
        [
            "--from",
            "ride",
            ride_file,
            "--config-file",
            RIDE_CIFAR,
            str(tmp_path / "bad.pth"),
            *CIFAR_OPTS,
        ]
    )  # 4 experts configured
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ERROR: ") and "Traceback" not in err
    assert "set MODEL.RIDE.NUM_EXPERTS 3" in err and err.count("\n") == 1
    assert not os.path.exists(str(tmp_path / "bad.pth"))


def test_router_stage_config_converts_without_warning_and_evaluates_its_routers(
    tmp_path, monkeypatch, capsys
):
    torch.manual_seed(5)
    src, out = str(tmp_path / "RIDE_EA.pth"), str(tmp_path / "out.pth")
    save_ride(src, RefResNetS(num_experts=3, top_k=5), args={"num_experts": 3})
    warnings = []
    from ride_dive.modeling.meta_arch import ride as ride_arch

    monkeypatch.setattr(ride_arch.logger, "warning", lambda *a, **k: warnings.append(a))
    router_stage = os.path.join(ROOT, "configs/CIFAR100-LT/ride_4e_r32_if100_router.yaml")
    opts = [*CIFAR_OPTS, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.ROUTER.TOP_K", "5"]
    code = _tool_module().cli(["--from", "ride", src, "--config-file", router_stage, out, *opts])
    stdout = capsys.readouterr().out
    assert code == 0 and warnings == []  # the converter trains nothing: no stage-1 warning
    command = _printed_command(stdout)
    # The file holds trained routers: evaluating it must not start a router stage.
    assert command[command.index("MODEL.ROUTER.TRAIN") + 1] == "False"
    assert any(k.startswith("router.") for k in safe_torch_load(out)["model"])


def test_help_prints_the_example_commands_as_written(capsys):
    with pytest.raises(SystemExit):
        _tool_module().cli(["--help"])
    text = capsys.readouterr().out
    assert "--from ride RIDE_checkpoint.pth \\\n" in text  # the continuation is kept
    assert "\n        --config-file configs/CIFAR100-LT/ride_4e_r32_if100.yaml out.pth" in text
    assert "--drop-router" in text


def test_drop_router_flag_of_the_tool(tmp_path, capsys):
    torch.manual_seed(6)
    src = str(tmp_path / "RIDE_EA.pth")
    save_ride(src, RefResNetS(num_experts=3, top_k=5), args={"num_experts": 3})
    args = ["--from", "ride", src, "--config-file", RIDE_CIFAR]
    opts = [*CIFAR_OPTS, "MODEL.RIDE.NUM_EXPERTS", "3"]
    assert _tool_module().cli(args + [str(tmp_path / "a.pth"), *opts]) == 2
    err = capsys.readouterr().err
    assert "--drop-router" in err and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "a.pth")
    assert _tool_module().cli(["--drop-router", *args, str(tmp_path / "b.pth"), *opts]) == 0
    assert "--drop-router" in capsys.readouterr().out  # the note says what was left out


def test_a_file_of_another_family_names_that_familys_config(ride_file):
    # A CIFAR ResNet-32 file with an ImageNet config: the message names a CIFAR config.
    with pytest.raises(ConfigError) as info:
        convert_checkpoint(ride_file, "ride", _cfg(RIDE_IMAGENET, "MODEL.RIDE.NUM_EXPERTS", "3"))
    message = str(info.value)
    assert "set it to 'RIDEResNet32'" in message
    assert "a RIDE CIFAR ResNet-32 with 3 experts" in message
    config = re.search(r"configs/\S+\.yaml", message).group(0)
    assert config == "configs/CIFAR10-LT/ride_3e_r32_if100.yaml"  # 10 classes, 3 experts
    assert os.path.isfile(os.path.join(ROOT, config))
    # Widths that differ after conversion: the width key, and the family's config.
    with pytest.raises(CheckpointMismatchError) as info:
        convert_checkpoint(
            ride_file,
            "ride",
            _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.RIDE.EXPERT_WIDTHS", "[24, 64]"),
        )
    assert "set MODEL.RIDE.EXPERT_WIDTHS" in str(info.value)
    assert "configs/CIFAR10-LT/ride_3e_r32_if100.yaml" in str(info.value)
    assert "strict=False" not in str(info.value)


def test_converted_file_with_the_wrong_expert_count_names_the_key(tmp_path, ride_file):
    out = str(tmp_path / "out.pth")
    convert_checkpoint(ride_file, "ride", _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3"), out)
    model = build_model(_cfg(RIDE_CIFAR, "MODEL.NUM_CLASSES", "10"), [1] * 10)  # 4 experts
    with pytest.raises(CheckpointMismatchError) as info:
        Checkpointer(model, "").load(out, checkpointables=[])
    assert "missing keys (121)" in str(info.value)
    assert "The file has 3 experts, the config builds 4: set MODEL.RIDE.NUM_EXPERTS 3" in str(
        info.value
    )
    assert "strict=False" not in str(info.value)


def _run_suggested_conversion(message: str, extra_opts, monkeypatch) -> str:
    """Run the conversion command a refusal message suggests (plus the tiny widths of the
    test networks); returns the converted file."""
    command = shlex.split(message[message.index("python tools/convert_checkpoint.py") :])
    assert command[:2] == ["python", "tools/convert_checkpoint.py"]
    monkeypatch.chdir(ROOT)  # the suggested config is relative to the repository
    assert _tool_module().cli(command[2:] + list(extra_opts)) == 0
    return command[command.index("--config-file") + 2]


def test_an_unconverted_ride_file_as_model_weights_says_how_to_convert(
    tmp_path, monkeypatch, capsys
):
    torch.manual_seed(7)
    ref = RefResNetS(num_experts=3).eval()
    randomize_bn(ref)
    src = str(tmp_path / "RIDE.pth")
    save_ride(src, ref, args={"num_experts": 3})
    cfg = _cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.NUM_CLASSES", "10")
    with pytest.raises(CheckpointError) as info:
        Checkpointer(build_model(cfg, [1] * 10), "").load(src, checkpointables=[])
    message = str(info.value)
    assert "is a checkpoint of the original RIDE (frank-xwang/RIDE-LongTailRecognition) code" in (
        message
    )
    assert "convert it first" in message and "--from ride" in message
    assert "truncated or corrupt" not in message and "weights_only=False" not in message
    converted = _run_suggested_conversion(message, CIFAR_OPTS, monkeypatch)
    x = torch.randn(4, 3, 16, 16)
    model = _converted_model(_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3"), converted)
    torch.testing.assert_close(_logits(model, x), ref(x), atol=1e-5, rtol=1e-5)

    # A bare RIDE state dict (no pickled config: weights_only reads it) is recognised too.
    bare = str(tmp_path / "bare.pth")
    torch.save(ride_state_dict(ref), bare)
    with pytest.raises(CheckpointError, match=r"original RIDE.*--from ride"):
        Checkpointer(build_model(cfg, [1] * 10), "").load(bare, checkpointables=[])


def test_an_unconverted_decoupling_file_as_model_weights_says_how_to_convert(tmp_path):
    feat, clf = RefFeatureResNeXt().eval(), RefDotProduct().eval()
    src = str(tmp_path / "final_model_checkpoint.pth")
    torch.save(
        {
            "epoch": 90,
            "best_acc": np.float64(0.5),  # a NumPy scalar: weights_only refuses the file
            "state_dict_best": {
                "feat_model": torch.nn.DataParallel(feat).state_dict(),
                "classifier": torch.nn.DataParallel(clf).state_dict(),
            },
        },
        src,
        _use_new_zipfile_serialization=False,
    )
    model = build_model(_cfg(CRT, "MODEL.NUM_CLASSES", "10"), [1] * 10)
    with pytest.raises(CheckpointError) as info:
        Checkpointer(model, "").load(src, checkpointables=[])
    message = str(info.value)
    assert "original classifier-balancing" in message and "--from decoupling" in message
    assert "--config-file configs/ImageNet-LT/crt_x50.yaml" in message


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
    assert _tool_module().cli(["--from", "ride", src, "--config-file", router_cfg, out, *opts]) == 0
    command = _printed_command(capsys.readouterr().out)
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


def test_the_ride_repository_is_named_correctly():
    """The original code is frank-xwang/RIDE-LongTailRecognition, spelt out in full."""
    wrong = re.compile(r"RIDE-LongTailRecog(?!nition)")
    found = []
    for top in ("README.md", "docs", "ride_dive", "tools"):
        path = os.path.join(ROOT, top)
        files = (
            [path]
            if os.path.isfile(path)
            else [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        )
        for name in files:
            if name.endswith((".md", ".py", ".yaml")):
                with open(name, encoding="utf-8") as f:
                    found += [name for line in f if wrong.search(line)]
    assert found == []
