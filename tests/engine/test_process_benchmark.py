"""Whole-process speed comparisons (benchmarks/process.py, tools/benchmark.py process)."""

import pytest

from benchmarks.process import DEFAULT_VARIANTS, parse_variant, process_table


def test_variants_parse_into_label_and_overrides():
    assert parse_variant("fp32=SOLVER.AMP.ENABLED False MODEL.CHANNELS_LAST False") == (
        "fp32",
        ["SOLVER.AMP.ENABLED", "False", "MODEL.CHANNELS_LAST", "False"],
    )
    assert parse_variant("as shipped=") == ("as shipped", [])
    assert [parse_variant(v)[0] for v in DEFAULT_VARIANTS][-1] == "shipped defaults"
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        parse_variant("odd=SOLVER.AMP.ENABLED")
    with pytest.raises(ValueError, match="LABEL="):
        parse_variant("no label")


def test_table_reports_medians_and_ratios_to_the_first_variant():
    table = process_table(
        {
            "slow": [(100.0, 80.0), (90.0, 70.0), (300.0, 75.0)],
            "fast": [(50.0, 20.0), (45.0, 25.0), (60.0, 30.0)],
        }
    ).splitlines()
    assert table[2] == "| slow | 100.0 (90.0-300.0) | 1.00x | 75.0 (70.0-80.0) | 1.00x |"
    # medians 50 and 25: 100/50 = 2.00x, 75/25 = 3.00x
    assert table[3] == "| fast | 50.0 (45.0-60.0) | 2.00x | 25.0 (20.0-30.0) | 3.00x |"
