"""Foreign pickles in original checkpoints run nothing: dangerous globals (also in Python 2
spelling and inside zip checkpoints) are refused unread, unknown ones become inert."""

import builtins
import os
import pickletools
import re
import sys
import types

import pytest
import torch

from ride_dive.checkpoint import Checkpointer, CheckpointError, safe_torch_load
from ride_dive.checkpoint.importers import convert_checkpoint
from ride_dive.modeling import build_model
from tests.checkpoint.importer_setup import RIDE_CIFAR, eval_logits, tiny_cfg
from tests.checkpoint.original_files import save_ride
from tests.checkpoint.reference_nets import RefResNetS


def test_a_config_that_names_os_functions_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_ride(
        "evil.pth", RefResNetS(num_experts=2).eval(), payload=(os.system, ("touch SENTINEL",))
    )
    with pytest.raises(CheckpointError, match=r"names posix.system.*nothing in it was executed"):
        convert_checkpoint("evil.pth", "ride", tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2"))
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
        "hooked.pth", "ride", tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2")
    )
    assert not os.path.exists("SENTINEL")
    assert "experiment_hooks.record" in result["meta"]["inert_globals"]
    x = torch.randn(2, 3, 16, 16)
    model = build_model(
        tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2", "MODEL.NUM_CLASSES", "10"), [1] * 10
    )
    model.load_state_dict(result["model"])
    torch.testing.assert_close(eval_logits(model, x), ref(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(CheckpointError):  # the project's own loader still refuses it
        safe_torch_load("hooked.pth")


def test_a_config_that_would_exec_code_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ref = RefResNetS(num_experts=2).eval()
    save_ride("evil.pth", ref, payload=(builtins.exec, ("open('SENTINEL', 'w').close()",)))
    with pytest.raises(CheckpointError, match=r"names builtins.exec.*nothing in it was executed"):
        convert_checkpoint("evil.pth", "ride", tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2"))
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
    cfg = tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2")
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
        convert_checkpoint("zip.pth", "ride", tiny_cfg(RIDE_CIFAR, "MODEL.RIDE.NUM_EXPERTS", "2"))
    assert not os.path.exists("SENTINEL")
