"""Config files that are wrong in form: each is one ConfigError naming the file and the fix."""

import pytest

from ride_dive.config import ConfigError, get_cfg
from ride_dive.engine import setup_cfg


def _write(path, text):
    path.write_text(text)
    return str(path)


def _merge_error(path) -> str:
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_file(str(path))
    return str(e.value)


def test_base_cycle_of_two_files_names_the_loop(tmp_path):
    _write(tmp_path / "b.yaml", "_BASE_: a.yaml\n")
    a = _write(tmp_path / "a.yaml", "_BASE_: b.yaml\n")
    message = _merge_error(a)
    assert "loops back on itself" in message
    assert message.count("a.yaml") == 2 and "b.yaml" in message


def test_a_file_naming_itself_and_the_list_form_are_cycles(tmp_path):
    assert "loops back" in _merge_error(_write(tmp_path / "self.yaml", "_BASE_: self.yaml\n"))
    _write(tmp_path / "ok.yaml", "SEED: 3\n")
    lst = _write(tmp_path / "lst.yaml", "_BASE_: [ok.yaml, lst.yaml]\n")
    assert "loops back" in _merge_error(lst)


def test_a_diamond_of_bases_is_not_a_cycle(tmp_path):
    _write(tmp_path / "root.yaml", "SEED: 1\n")
    _write(tmp_path / "left.yaml", "_BASE_: root.yaml\nSOLVER: {MAX_EPOCHS: 7}\n")
    _write(tmp_path / "right.yaml", "_BASE_: root.yaml\nSOLVER: {BASE_LR: 0.3}\n")
    top = _write(tmp_path / "top.yaml", "_BASE_: [left.yaml, right.yaml]\nSEED: 5\n")
    cfg = get_cfg()
    cfg.merge_from_file(top)
    assert (cfg.SEED, cfg.SOLVER.MAX_EPOCHS, cfg.SOLVER.BASE_LR) == (5, 7, 0.3)


def test_a_base_that_is_not_yaml_or_a_directory_names_both_files(tmp_path):
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    message = _merge_error(_write(tmp_path / "pw.yaml", f"_BASE_: {text}\n"))
    assert "not a mapping of config keys" in message and "pw.yaml" in message
    message = _merge_error(_write(tmp_path / "dir.yaml", f"_BASE_: {tmp_path}\n"))
    assert "is a directory" in message and "dir.yaml" in message
    assert "does not exist" in _merge_error(_write(tmp_path / "gone.yaml", "_BASE_: nope.yaml\n"))


def test_binary_empty_and_list_files(tmp_path):
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not a text (UTF-8) file" in _merge_error(binary)
    assert "is empty" in _merge_error(_write(tmp_path / "e.yaml", "# nothing\n"))
    assert "holds a list" in _merge_error(_write(tmp_path / "l.yaml", "- 1\n- 2\n"))


def test_a_duplicate_key_names_both_lines(tmp_path):
    path = _write(
        tmp_path / "d.yaml", "SOLVER:\n  MAX_EPOCHS: 3\n  BASE_LR: 0.1\n  MAX_EPOCHS: 4\n"
    )
    message = _merge_error(path)
    assert f"{path}:4" in message and "'MAX_EPOCHS' is given twice" in message
    assert "first on line 2" in message


def test_a_section_over_a_base_value_is_an_error(tmp_path):
    _write(tmp_path / "base.yaml", "SOLVER: 3\n")
    child = _write(tmp_path / "child.yaml", "_BASE_: base.yaml\nSOLVER: {MAX_EPOCHS: 2}\n")
    assert "'SOLVER' is a section of keys here" in _merge_error(child)


def test_a_bom_does_not_hide_the_first_key(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfSEED: 9\n")
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    assert cfg.SEED == 9


@pytest.mark.parametrize("value", ["[[1]]", "['a']", "[1.5]"])
def test_solver_steps_elements_must_be_integers(value):
    with pytest.raises(ConfigError, match="SOLVER.STEPS .* must be a list of integers"):
        get_cfg().merge_from_list(["SOLVER.STEPS", value])


def test_list_elements_of_an_empty_default_are_checked_and_ints_become_floats():
    cfg = get_cfg()
    cfg.merge_from_list(["INPUT.PIXEL_MEAN", "[0, 0.5, 1]"])
    assert cfg.INPUT.PIXEL_MEAN == [0.0, 0.5, 1.0]
    with pytest.raises(ConfigError, match="TEST.EXTRA_EVALUATORS .* list of strings"):
        cfg.merge_from_list(["TEST.EXTRA_EVALUATORS", "[1]"])


def test_a_teacher_config_that_does_not_load_is_found_before_anything_is_written(tmp_path):
    bad = _write(tmp_path / "teacher.yaml", "- a\n")
    with pytest.raises(ConfigError, match="MODEL.TEACHER.CONFIG_FILE is not a usable config"):
        setup_cfg("", ["MODEL.TEACHER.CONFIG_FILE", bad, "OUTPUT_DIR", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
