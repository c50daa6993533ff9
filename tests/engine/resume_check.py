"""One check shared by the feature tests: a run crashed after epoch 2 and resumed ends with
the weights of the uninterrupted run."""

import pytest
import torch

from ride_dive.engine import DefaultTrainer, HookBase


class _Crash(HookBase):
    class Stop(Exception):
        pass

    def after_epoch(self):
        if self.trainer.epoch == 1:
            raise self.Stop


def assert_resume_is_exact(tiny_cfg, tmp_path, **opts) -> DefaultTrainer:
    """Train ``tiny_cfg(**opts)`` straight and with a crash + ``--resume``; compare the
    weights exactly. Returns the straight run's trainer."""
    straight = DefaultTrainer(tiny_cfg(output_dir=tmp_path / "straight", **opts))
    straight.trainer.train(0)
    cfg = tiny_cfg(output_dir=tmp_path / "crashed", **opts)
    crashed = DefaultTrainer(cfg)
    crashed.trainer.register_hooks([_Crash()])
    with pytest.raises(_Crash.Stop):
        crashed.trainer.train(0)
    torch.manual_seed(4321)  # another global RNG state must not matter
    resumed = DefaultTrainer(cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_epoch == 2
    resumed.trainer.train(resumed.start_epoch)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return straight
