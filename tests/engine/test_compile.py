"""MODEL.COMPILE: the compiled training step gives eager's losses, resumes exactly, and its
checkpoints are the plain module's (no ``_orig_mod.`` keys; they load into an eager model).

The tests use torch.compile's "aot_eager" backend: the same tracing, graph capture and
autograd graph as Inductor without generating C++ (minutes on 2 cores). Inductor's kernels
are measured in the speed suite instead (BENCHMARKS.md).
"""

import pytest
import torch

from ride_dive.checkpoint import load_trained_model
from ride_dive.config import ConfigError
from ride_dive.engine import DefaultTrainer, HookBase, setup_cfg
from ride_dive.utils.modules import compile_for_training, unwrap_model
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.skipif(
    not hasattr(torch, "compile"), reason="torch.compile needs torch >= 2.0"
)

TINY = {"SOLVER.MAX_EPOCHS": 2, "SOLVER.WARMUP_EPOCHS": 0, "DATASETS.MAX_PER_CLASS": 20}
COMPILED = {"MODEL.COMPILE.ENABLED": True, "MODEL.COMPILE.BACKEND": "aot_eager"}


class _Losses(HookBase):
    def __init__(self):
        self.values = []

    def after_step(self):
        self.values.append(self.trainer.storage.latest()["total_loss"])


class _StopAfterFirstEpoch(HookBase):
    class Stop(Exception):
        pass

    def after_epoch(self):
        raise self.Stop


def _trainer(path, **extra):
    return DefaultTrainer(setup_cfg("", tiny_overrides(path, **TINY, **extra)))


def test_compiled_training_matches_eager_resumes_and_saves_plain_weights(tmp_path):
    eager, losses_eager = _trainer(tmp_path / "eager"), _Losses()
    eager.trainer.register_hooks([losses_eager])
    eager.trainer.train(0)

    first = _trainer(tmp_path / "compiled", **COMPILED)
    assert (
        first.trainer.model is not first.model and unwrap_model(first.trainer.model) is first.model
    )
    losses_compiled = _Losses()
    first.trainer.register_hooks([losses_compiled, _StopAfterFirstEpoch()])
    with pytest.raises(_StopAfterFirstEpoch.Stop):
        first.trainer.train(0)
    resumed = _trainer(tmp_path / "compiled", **COMPILED)
    resumed.resume_or_load(resume=True)
    assert resumed.start_epoch == 1
    resumed.trainer.register_hooks([losses_compiled])
    resumed.trainer.train(resumed.start_epoch)

    # Same losses step by step (the traced graph reorders nothing that matters at this
    # tolerance), across the resume.
    assert len(losses_compiled.values) == len(losses_eager.values)
    torch.testing.assert_close(
        torch.tensor(losses_compiled.values),
        torch.tensor(losses_eager.values),
        atol=1e-4,
        rtol=1e-4,
    )
    final = tmp_path / "compiled" / "model_final.pth"
    state = torch.load(final, weights_only=True)["model"]
    assert not any("_orig_mod" in k for k in state)
    eager_model = load_trained_model(resumed.cfg, resumed.splits.class_counts, weights=str(final))
    for k, v in eager_model.state_dict().items():
        torch.testing.assert_close(v, eager.model.state_dict()[k], atol=1e-4, rtol=1e-4)


def test_compile_off_is_the_module_itself_and_bad_modes_are_config_errors(tmp_path):
    cfg = setup_cfg("", tiny_overrides(tmp_path))
    model = torch.nn.Linear(2, 2)
    assert compile_for_training(model, cfg) is model
    with pytest.raises(ConfigError, match="MODEL.COMPILE.MODE must be one of default"):
        setup_cfg("", tiny_overrides(tmp_path, **{"MODEL.COMPILE.MODE": "fast"}))
    with pytest.raises(ConfigError, match="MODEL.COMPILE.BACKEND must be one of inductor"):
        setup_cfg("", tiny_overrides(tmp_path, **{"MODEL.COMPILE.BACKEND": "tvm"}))
