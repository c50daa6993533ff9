"""The speed suite's building blocks (tools/benchmark.py speed) at toy sizes: the configs
it measures, and that each loop runs and reports a rate."""
import pytest

from ride_dive.engine.speed import (
    SPEED_MODELS,
    bare_loop,
    default_speed_models,
    speed_cfg,
    trainer_loop,
)


def test_models_and_their_image_sizes(tmp_path):
    assert default_speed_models(cuda=False) == ["ResNet-32", "RIDE ResNet-32 4E"]
    assert default_speed_models(cuda=True) == list(SPEED_MODELS)
    cfg = speed_cfg(str(tmp_path), 128, True, True, 30, "RIDE ResNeXt-50 4E")
    assert (cfg.INPUT.CROP_SIZE, cfg.DATASETS.SYNTHETIC.IMAGE_SIZE) == (224, 224)
    assert cfg.MODEL.BACKBONE.NAME == "RIDEResNeXt50" and cfg.MODEL.RIDE.NUM_EXPERTS == 4
    assert cfg.SOLVER.AMP.ENABLED and cfg.MODEL.CHANNELS_LAST
    assert speed_cfg(str(tmp_path), 128, False, False, 30).INPUT.CROP_SIZE == 32


@pytest.mark.parametrize("model, size", [("RIDE ResNeXt-50 4E", 32), ("ResNet-32", None)])
def test_bare_loop_runs_at_the_configured_image_size(tmp_path, model, size):
    cfg = speed_cfg(str(tmp_path), 2, True, True, 1, model, image_size=size)
    train, evaluate = bare_loop(cfg, iters=1)
    assert train > 0 and evaluate > 0


def test_trainer_loop_reports_images_per_second(tmp_path):
    cfg = speed_cfg(str(tmp_path), 4, False, False, 2, "ResNet-32", image_size=16)
    assert trainer_loop(cfg, iters=2) > 0
