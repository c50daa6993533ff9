"""The accuracy suite: pipelines per (IF, seed), eval / tau-norm stages, the mean ± std table."""

import json
import os
import re
import statistics
import sys

import pytest

from benchmarks.accuracy_suite import (
    SUITES,
    TRAINING_TIME_KEY,
    Suite,
    paired_table,
    replace_section,
    run_suite,
    seed_warning,
    suite_table,
    training_seconds,
)
from ride_dive.engine import setup_cfg
from ride_dive.engine.pipeline import load_pipeline
from ride_dive.utils.logger import setup_logger
from tests.conftest import ROOT, tiny_overrides

setup_logger("", rank=1)  # quiet


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    """A four-method suite on the tiny synthetic set: CE, cRT and tau-norm on it, NCM."""
    d = tmp_path_factory.mktemp("suite")
    base = setup_cfg(
        "",
        tiny_overrides(
            d / "unused",
            **{"SOLVER.MAX_EPOCHS": 2, "DATASETS.VAL_SOURCE": "test", "DATASETS.VAL_PER_CLASS": 2},
        ),
    )
    _write(d / "base.yaml", base.dump())
    _write(d / "ce.yaml", '_BASE_: "base.yaml"\n')
    _write(
        d / "crt.yaml",
        '_BASE_: "base.yaml"\nMODEL: {BACKBONE: {FREEZE: True}, HEAD: '
        '{REINIT: True}}\nDATALOADER: {SAMPLER: "ClassAwareSampler"}\n',
    )
    _write(d / "ncm.yaml", '_BASE_: "base.yaml"\nMODEL: {HEAD: {NAME: "NCMHead"}}\n')
    pipeline = _write(
        d / "suite.yaml",
        """PIPELINE:
  NAME: "tiny suite"
  OUTPUT_DIR: "unused"
  STAGES:
    - {NAME: "ce", CONFIG: "ce.yaml", LABEL: "CE"}
    - {NAME: "crt", CONFIG: "crt.yaml", WEIGHTS: "ce", LABEL: "cRT"}
    - {NAME: "tau_norm", CONFIG: "ce.yaml", WEIGHTS: "ce", KIND: "tau_norm", LABEL: "tau-norm"}
    - {NAME: "ncm", CONFIG: "ncm.yaml", WEIGHTS: "ce", KIND: "eval", LABEL: "NCM"}
""",
    )
    suite = Suite("Tiny", pipeline, (10.0, 5.0), {"ce": {10.0: "12.3"}})
    root = str(d / "runs")
    run_suite(suite, root, seeds=[0, 1], imbalance_factors=[10.0])
    return suite, root


def _row(table, label):
    return next(line for line in table.splitlines() if line.startswith(f"| {label} |"))


def test_every_stage_of_every_seed_runs_with_the_suite_settings(tiny_suite):
    suite, root = tiny_suite
    for seed in (0, 1):
        run = os.path.join(root, "if10", f"s{seed}")
        for stage in ("ce", "crt", "tau_norm", "ncm"):
            assert os.path.isfile(os.path.join(run, stage, "results.json")), (seed, stage)
        cfg = setup_cfg(os.path.join(run, "crt", "config.yaml"))
        assert cfg.SEED == seed and cfg.DATASETS.IMBALANCE_FACTOR == 10.0
        assert cfg.MODEL.WEIGHTS == os.path.join(run, "ce", "model_final.pth")
    assert not os.path.exists(os.path.join(root, "if5"))  # only the factors asked for


def test_table_is_the_mean_and_std_of_the_seeds(tiny_suite):
    suite, root = tiny_suite
    table = suite_table(suite, root, 10.0)
    header = table.splitlines()[0]
    assert header.endswith("published top-1 |")
    for stage, label, file, pick in (
        ("ce", "CE", "results.json", lambda r: r),
        ("tau_norm", "tau-norm", "results.json", lambda r: r["tau_norm"]["test"]),
        ("ncm", "NCM", "results.json", lambda r: r),
    ):
        runs = [
            pick(json.load(open(os.path.join(root, "if10", f"s{s}", stage, file)))) for s in (0, 1)
        ]
        top1 = [r["top1"] for r in runs]
        cells = [c.strip() for c in _row(table, label).split("|")[1:-1]]
        assert cells[1] == "2"
        assert cells[2] == f"{statistics.mean(top1):.2f} ± {statistics.stdev(top1):.2f}"
        assert float(cells[-3].split(" ")[0]) > 0  # GMACs per image
    ce_cells = [c.strip() for c in _row(table, "CE").split("|")[1:-1]]
    assert ce_cells[-1] == "12.3"  # the published number, where there is one
    seconds = [training_seconds(os.path.join(root, "if10", f"s{s}", "ce")) for s in (0, 1)]
    assert None not in seconds  # the CE stage trained in both seeds
    assert ce_cells[-2] == f"{statistics.mean(seconds):.0f} ± {statistics.stdev(seconds):.0f}"
    ncm_cells = [c.strip() for c in _row(table, "NCM").split("|")[1:-1]]
    assert ncm_cells[-2] == "–"  # an evaluation-only stage has no training time
    # Only finished runs count: a missing seed just lowers the count.
    assert _row(suite_table(suite, root, 10.0, seeds=[0, 7]), "CE").split("|")[2].strip() == "1"


def test_paired_differences_match_the_per_seed_results(tiny_suite):
    suite, root = tiny_suite
    table = paired_table(suite, root, 10.0)
    # Pairs with a stage the suite lacks (BSCE, DiVE, RIDE) are left out.
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == [
        "cRT − CE",
        "tau-norm − CE",
        "NCM − CE",
    ]

    assert table.splitlines()[0] == (
        "| A − B | seeds | top1 difference | many difference | medium difference | few difference |"
    )

    def metric(stage, seed, key):
        r = json.load(open(os.path.join(root, "if10", f"s{seed}", stage, "results.json")))
        return r.get(key)

    # Every column is the paired difference of its results.json key; a group the runs lack
    # (the tiny suite's 40..4 images per class have no "many" class) is "–".
    cells = [c.strip() for c in _row(table, "cRT − CE").split("|")[3:-1]]
    checked = []
    for key, cell in zip(("top1", "many", "medium", "few"), cells):
        if metric("ce", 0, key) is None:
            assert cell == "–"
            continue
        d = [metric("crt", s, key) - metric("ce", s, key) for s in (0, 1)]
        mean, sd = statistics.mean(d), statistics.stdev(d)
        half = 12.706 * sd / 2**0.5  # t(0.975, 1 degree of freedom)
        want = f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"
        assert cell in (want, want + " (n.s.)")
        assert cell.endswith("(n.s.)") == (mean - half <= 0 <= mean + half)
        checked.append(key)
    assert checked[0] == "top1" and len(checked) >= 2  # top-1 and at least one shot group
    # One shared seed gives no interval.
    assert _row(paired_table(suite, root, 10.0, seeds=[0]), "cRT − CE").split("|")[3].strip() == "–"


def test_fewer_seeds_than_the_default_are_flagged(tiny_suite):
    suite, _ = tiny_suite
    assert "Only 2 seed(s)" in seed_warning(suite, 2)
    assert seed_warning(suite, 3) == ""
    assert len(SUITES["fashion-mnist-lt"].default_seeds) == 5


def test_rerunning_skips_finished_runs(tiny_suite, caplog):
    suite, root = tiny_suite
    result = os.path.join(root, "if10", "s0", "crt", "results.json")
    before = os.path.getmtime(result)
    setup_logger("", rank=0)
    try:
        run_suite(suite, root, seeds=[0], imbalance_factors=[10.0])
    finally:
        setup_logger("", rank=1)
    assert os.path.getmtime(result) == before


def test_training_seconds_come_from_results_json(tmp_path):
    _write(tmp_path / "results.json", json.dumps({"top1": 50.0, TRAINING_TIME_KEY: 31.25}))
    # The log of the same run says otherwise: results.json is what counts.
    _write(tmp_path / "log.txt", "[x] Training time: 12.5 s\n")
    assert training_seconds(str(tmp_path)) == 31.25
    assert training_seconds(str(tmp_path / "missing")) is None


def test_a_run_that_only_evaluated_has_no_training_time(tmp_path):
    _write(tmp_path / "results.json", json.dumps({"top1": 50.0}))
    _write(tmp_path / "log.txt", "[x] Evaluating model_final.pth\n")
    assert training_seconds(str(tmp_path)) is None


def test_old_run_folders_without_the_key_sum_the_logged_sessions(tmp_path):
    _write(tmp_path / "results.json", json.dumps({"top1": 50.0}))
    _write(
        tmp_path / "log.txt", "[x] Training time: 12.5 s\n[y] Resuming\n[z] Training time: 7.5 s\n"
    )
    assert training_seconds(str(tmp_path)) == 20.0


def test_replace_section_inserts_then_replaces_only_its_block():
    text = replace_section("# Benchmarks\n\nintro\n", "accuracy:x", "table 1")
    assert (
        text == "# Benchmarks\n\nintro\n\n<!-- accuracy:x:begin -->\ntable 1\n"
        "<!-- accuracy:x:end -->\n"
    )
    text = replace_section(text + "\nafter\n", "accuracy:x", "table 2")
    assert "table 1" not in text and "table 2" in text
    assert text.startswith("# Benchmarks\n\nintro\n") and text.endswith("\nafter\n")


def test_every_shipped_suite_parses_and_names_published_stages():
    for name, suite in SUITES.items():
        stages = {s.name for s in load_pipeline(suite.pipeline).stages}
        assert {
            "ce",
            "bsce",
            "ldam_drw",
            "dive",
            "ride_3e",
            "ride_4e",
            "ride_6e_bsce",
            "ride_dive",
            "ride_dive_router",
            "crt",
            "lws",
            "tau_norm",
            "ncm",
        } <= stages
        for stage, by_factor in suite.published.items():
            assert stage in stages, (name, stage)
            assert set(by_factor) <= set(suite.imbalance_factors), (name, stage)
        assert set(suite.sources) == set(suite.published), name  # every number has a source


def _methods_reference_numbers() -> str:
    """The text of docs/METHODS.md's section of published reference numbers."""
    with open(os.path.join(ROOT, "docs", "METHODS.md"), encoding="utf-8") as f:
        text = f.read()
    section = re.search(r"^## [^\n]*Published reference numbers.*?(?=^## |\Z)", text, re.M | re.S)
    assert section, "docs/METHODS.md has no 'Published reference numbers' section"
    return section.group(0)


def test_published_numbers_agree_with_methods_md():
    section = _methods_reference_numbers()
    listed = set(re.findall(r"\d+\.\d+", section))
    for name, suite in SUITES.items():
        for stage, by_factor in suite.published.items():
            for text in by_factor.values():
                for number in re.findall(r"\d+\.\d+", text):
                    assert number in listed, (name, stage, number)


def test_benchmark_tool_writes_the_suite_section(tiny_suite, tmp_path, monkeypatch):
    suite, root = tiny_suite
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import benchmark

    monkeypatch.setitem(SUITES, "tiny", suite)
    md = tmp_path / "BENCHMARKS.md"
    _write(md, "# Benchmarks\n\nkept\n")
    benchmark.main(
        [
            "accuracy",
            "--suite",
            "tiny",
            "--imbalance",
            "10",
            "--output-root",
            root,
            "--report-only",
            "--benchmarks-md",
            str(md),
        ]
    )
    text = md.read_text()
    assert "kept" in text and "## Accuracy: Tiny" in text and "### Tiny, IF 10" in text
    assert suite_table(suite, root, 10.0) in text


@pytest.mark.parametrize("imbalance", [100.0, 10.0])
def test_benchmarks_md_tables_are_the_records_rebuilt(imbalance):
    """The Fashion-MNIST-LT tables checked into BENCHMARKS.md are what the report code prints
    from the results.json files kept in benchmarks/records: no cell was typed by hand."""
    suite = SUITES["fashion-mnist-lt"]
    records = os.path.join(ROOT, "benchmarks", "records", "fmnist_lt_accuracy_suite")
    with open(os.path.join(ROOT, "BENCHMARKS.md")) as f:
        published = f.read()
    table = suite_table(suite, records, imbalance)
    assert table.count("\n| ") == len(load_pipeline(suite.pipeline).stages)
    assert "| 5 |" in table and table in published
    assert paired_table(suite, records, imbalance) in published
