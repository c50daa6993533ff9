"""Config merge, overrides, unknown keys, type errors, assert_cfg and @configurable."""

import pytest

from ride_dive.config import ConfigError, assert_cfg, configurable, get_cfg


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_get_cfg_returns_independent_copies():
    a, b = get_cfg(), get_cfg()
    a.SOLVER.BASE_LR = 7.0
    assert b.SOLVER.BASE_LR == 0.1


def test_base_inheritance_and_override_order(tmp_path):
    _write(tmp_path / "Base.yaml", "SOLVER:\n  BASE_LR: 0.5\n  MAX_EPOCHS: 10\nSEED: 3\n")
    child = _write(tmp_path / "child.yaml", '_BASE_: "Base.yaml"\nSOLVER:\n  MAX_EPOCHS: 20\n')
    cfg = get_cfg()
    cfg.merge_from_file(child)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCHS, cfg.SEED) == (0.5, 20, 3)
    cfg.merge_from_list(["SOLVER.MAX_EPOCHS", "30", "OUTPUT_DIR", "out/x"])
    assert cfg.SOLVER.MAX_EPOCHS == 30 and cfg.OUTPUT_DIR == "out/x"
    # An int where the default is a float is accepted and stored as a float.
    cfg.merge_from_list(["SOLVER.BASE_LR", "1"])
    assert isinstance(cfg.SOLVER.BASE_LR, float) and cfg.SOLVER.BASE_LR == 1.0


def test_unknown_key_in_file_names_key_and_closest(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "SOLVER:\n  BASE_LRR: 0.5\n")
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_file(bad)
    msg = str(e.value)
    assert "SOLVER.BASE_LRR" in msg and "SOLVER.BASE_LR" in msg and "bad.yaml" in msg


def test_unknown_key_on_command_line_names_closest():
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_list(["SOLVER.MAX_EPOCH", "3"])
    assert "SOLVER.MAX_EPOCH'" in str(e.value) and "SOLVER.MAX_EPOCHS" in str(e.value)


def test_wrong_type_is_a_config_error():
    with pytest.raises(ConfigError, match="SEED"):
        get_cfg().merge_from_list(["SEED", "abc"])


def test_odd_override_list():
    with pytest.raises(ConfigError, match="pairs"):
        get_cfg().merge_from_list(["SEED"])


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        get_cfg().merge_from_file("/nonexistent/config.yaml")


@pytest.mark.parametrize(
    "key,value,fragment",
    [
        ("SOLVER.MAX_EPOCHS", "-1", "MAX_EPOCHS"),
        ("DATASETS.IMBALANCE_FACTOR", "0.5", "IMBALANCE_FACTOR"),
        ("SOLVER.LR_SCHEDULER", "'poly'", "LR_SCHEDULER"),
        ("SOLVER.STEPS", "(100, 50)", "STEPS"),
        ("DATASETS.VAL_SOURCE", "'train_remainder'", "VAL_PER_CLASS"),
        ("SOLVER.MAX_EPOCHS", "0", r"SOLVER.MAX_EPOCHS must be > 0, got 0"),
        ("SOLVER.MOMENTUM", "-0.9", r"SOLVER.MOMENTUM must be in \[0, 1\)"),
        ("SOLVER.GAMMA", "0.0", "SOLVER.GAMMA"),
        ("TEST.BATCH_SIZE", "0", "TEST.BATCH_SIZE must be > 0"),
        ("LOG_PERIOD", "0", "LOG_PERIOD must be > 0"),
        ("SEED", "-1", r"SEED must be in \[0, 2\*\*32\)"),
        ("SOLVER.MAX_EPOCHS", "99999999999999999999999", "SOLVER.MAX_EPOCHS must be at most"),
        ("TEST.BEST_METRIC", "'acc'", "TEST.BEST_METRIC must be one of top1, top5"),
        ("DATASETS.ON_BAD_IMAGE", "'ignore'", "DATASETS.ON_BAD_IMAGE must be 'fail' or 'skip'"),
        ("INPUT.PADDING", "-1", "INPUT.PADDING must be >= 0"),
        ("MODEL.NUM_CLASSES", "-5", "MODEL.NUM_CLASSES must be >= 0"),
        ("DATASETS.SYNTHETIC.NUM_CLASSES", "1", "NUM_CLASSES >= 2"),
        ("TEST.FEW_THRESHOLD", "500", "TEST.MANY_THRESHOLD"),
        ("MODEL.LOSS.DRW_BETA", "1.0", "DRW_BETA"),
    ],
)
def test_assert_cfg_rejects_inconsistent_settings(key, value, fragment):
    cfg = get_cfg()
    cfg.merge_from_list([key, value])
    with pytest.raises(ConfigError, match=fragment):
        assert_cfg(cfg)


def test_defaults_are_consistent():
    assert_cfg(get_cfg())


def test_every_problem_is_listed_at_once():
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.MAX_EPOCHS", "-1", "DATASETS.IMBALANCE_FACTOR", "0.5"])
    with pytest.raises(ConfigError) as e:
        assert_cfg(cfg)
    assert "MAX_EPOCHS must be > 0, got -1" in str(e.value)
    assert "IMBALANCE_FACTOR must be >= 1 (n_max / n_min), got 0.5" in str(e.value)


@pytest.mark.parametrize(
    "key,value,message",
    [
        (
            "SOLVER.MAX_EPOCHS",
            "ten",
            "SOLVER.MAX_EPOCHS (from command line) must be an integer like "
            "its default 200, got 'ten', which is a string.",
        ),
        ("SOLVER.BATCH_SIZE", "2.5", "must be an integer like its default 128, got 2.5"),
        ("SOLVER.BATCH_SIZE", "True", "got True, which is a boolean"),
        ("INPUT.HFLIP", "1", "INPUT.HFLIP (from command line) must be a boolean"),
        ("MODEL.LOSS.NAME", "5", "got 5, which is an integer (quote it to pass a string)"),
        ("SOLVER", "3", "SOLVER (from command line) is a section (keys: OPTIMIZER, BASE_LR"),
        ("SEED", "{'a': 1}", "SEED (from command line) must be an integer"),
    ],
)
def test_wrong_type_names_key_expected_type_and_value(key, value, message):
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_list([key, value])
    assert message in str(e.value)


def test_yaml_values_read_as_literals(tmp_path):
    good = _write(tmp_path / "good.yaml", "SOLVER:\n  BASE_LR: 1e-3\n  STEPS: (10, 20)\n")
    cfg = get_cfg()
    cfg.merge_from_file(good)  # PyYAML leaves both strings; they are read as literals
    assert cfg.SOLVER.BASE_LR == 0.001 and tuple(cfg.SOLVER.STEPS) == (10, 20)
    bad = _write(tmp_path / "bad.yaml", "SOLVER:\n  MAX_EPOCHS: many\n")
    with pytest.raises(ConfigError, match=r"SOLVER.MAX_EPOCHS \(from .*bad.yaml\) must be an"):
        get_cfg().merge_from_file(bad)


class _Widget:
    @configurable
    def __init__(self, width, depth=2):
        self.width, self.depth = width, depth

    @classmethod
    def from_config(cls, cfg, depth=5):
        return {"width": cfg.SOLVER.BATCH_SIZE, "depth": depth}


def test_configurable_with_and_without_cfg():
    cfg = get_cfg()
    w = _Widget(cfg)
    assert (w.width, w.depth) == (128, 5)
    w = _Widget(cfg, depth=9)
    assert (w.width, w.depth) == (128, 9)
    w = _Widget(width=3)
    assert (w.width, w.depth) == (3, 2)
