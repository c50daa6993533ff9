"""Every misuse of the converter and of unconverted files gets a specific one-paragraph
error naming the key or command that fixes it; the converter CLI end to end."""

import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

from ride_dive.checkpoint import Checkpointer, CheckpointError, safe_torch_load
from ride_dive.checkpoint.importers import convert_checkpoint
from ride_dive.checkpoint.model_state import CheckpointMismatchError
from ride_dive.config import ConfigError
from ride_dive.modeling import build_model
from tests.checkpoint.importer_setup import (
    CIFAR_OPTS,
    CRT,
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
    randomize_bn,
    ride_state_dict,
)
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def ride_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ride") / "RIDE.pth")
    torch.manual_seed(4)
    save_ride(path, RefResNetS(num_experts=3), args={"num_experts": 3})
    return path


def test_errors_are_specific(tmp_path, ride_file):
    cfg = tiny_cfg(RIDE_CIFAR)  # 4 experts
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
        convert_checkpoint(ride_file, "decoupling", tiny_cfg(CRT))
    three = tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3")
    with pytest.raises(ConfigError, match="MODEL.NUM_CLASSES is 20: set it to 10"):
        convert_checkpoint(
            ride_file,
            "ride",
            tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.NUM_CLASSES", "20"),
        )
    with pytest.raises(CheckpointMismatchError, match=r"backbone\.layer3s\.0\.0\.conv1\.weight"):
        convert_checkpoint(
            ride_file,
            "ride",
            tiny_cfg(
                RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.RIDE.EXPERT_WIDTHS", "[24, 64]"
            ),
        )
    with pytest.raises(ConfigError, match="MODEL.HEAD.COSINE_SCALE is 16: set it to 30"):
        convert_checkpoint(
            ride_file,
            "ride",
            tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.HEAD.COSINE_SCALE", "16.0"),
        )
    with pytest.raises(ConfigError, match="MODEL.META_ARCHITECTURE 'RIDE'"):
        convert_checkpoint(ride_file, "ride", tiny_cfg(CRT))
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
    command = printed_command(ok.stdout)
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

    code = converter_tool().cli(
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
    code = converter_tool().cli(["--from", "ride", src, "--config-file", router_stage, out, *opts])
    stdout = capsys.readouterr().out
    assert code == 0 and warnings == []  # the converter trains nothing: no stage-1 warning
    command = printed_command(stdout)
    # The file holds trained routers: evaluating it must not start a router stage.
    assert command[command.index("MODEL.ROUTER.TRAIN") + 1] == "False"
    assert any(k.startswith("router.") for k in safe_torch_load(out)["model"])


def test_help_prints_the_example_commands_as_written(capsys):
    with pytest.raises(SystemExit):
        converter_tool().cli(["--help"])
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
    assert converter_tool().cli(args + [str(tmp_path / "a.pth"), *opts]) == 2
    err = capsys.readouterr().err
    assert "--drop-router" in err and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "a.pth")
    assert converter_tool().cli(["--drop-router", *args, str(tmp_path / "b.pth"), *opts]) == 0
    assert "--drop-router" in capsys.readouterr().out  # the note says what was left out


def test_a_file_of_another_family_names_that_familys_config(ride_file):
    # A CIFAR ResNet-32 file with an ImageNet config: the message names a CIFAR config.
    with pytest.raises(ConfigError) as info:
        convert_checkpoint(
            ride_file, "ride", tiny_cfg(RIDE_IMAGENET, "MODEL.RIDE.NUM_EXPERTS", "3")
        )
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
            tiny_cfg(
                RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.RIDE.EXPERT_WIDTHS", "[24, 64]"
            ),
        )
    assert "set MODEL.RIDE.EXPERT_WIDTHS" in str(info.value)
    assert "configs/CIFAR10-LT/ride_3e_r32_if100.yaml" in str(info.value)
    assert "strict=False" not in str(info.value)


def test_converted_file_with_the_wrong_expert_count_names_the_key(tmp_path, ride_file):
    out = str(tmp_path / "out.pth")
    convert_checkpoint(ride_file, "ride", tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3"), out)
    model = build_model(tiny_cfg(RIDE_CIFAR, "MODEL.NUM_CLASSES", "10"), [1] * 10)  # 4 experts
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
    assert converter_tool().cli(command[2:] + list(extra_opts)) == 0
    return command[command.index("--config-file") + 2]


def test_an_unconverted_ride_file_as_model_weights_says_how_to_convert(
    tmp_path, monkeypatch, capsys
):
    torch.manual_seed(7)
    ref = RefResNetS(num_experts=3).eval()
    randomize_bn(ref)
    src = str(tmp_path / "RIDE.pth")
    save_ride(src, ref, args={"num_experts": 3})
    cfg = tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3", "MODEL.NUM_CLASSES", "10")
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
    model = converted_model(tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "3"), converted)
    torch.testing.assert_close(eval_logits(model, x), ref(x), atol=1e-5, rtol=1e-5)

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
    model = build_model(tiny_cfg(CRT, "MODEL.NUM_CLASSES", "10"), [1] * 10)
    with pytest.raises(CheckpointError) as info:
        Checkpointer(model, "").load(src, checkpointables=[])
    message = str(info.value)
    assert "original classifier-balancing" in message and "--from decoupling" in message
    assert "--config-file configs/ImageNet-LT/crt_x50.yaml" in message


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
