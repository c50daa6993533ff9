"""Paired differences over seeds (docs/METHODS.md section 10) against hand computations."""

import math

import pytest

from ride_dive.evaluation import format_paired, paired_difference, t_quantile_975


def test_paired_difference_by_hand():
    a, b = [80.0, 82.5, 79.0], [78.0, 81.0, 78.5]
    d = [2.0, 1.5, 0.5]
    mean = sum(d) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 2)
    got = paired_difference(a, b)
    assert got["n"] == 3
    assert got["mean"] == pytest.approx(mean)
    assert got["sd"] == pytest.approx(sd)
    assert got["half_width"] == pytest.approx(4.303 * sd / math.sqrt(3))
    assert got["low"] == pytest.approx(mean - 4.303 * sd / math.sqrt(3))
    assert got["high"] == pytest.approx(mean + 4.303 * sd / math.sqrt(3))
    # 1.33 +- 1.90: three seeds, all positive, and still not significant.
    assert got["significant"] is False


def test_interval_holding_zero_is_not_significant():
    got = paired_difference([80.0, 79.0, 81.0], [79.5, 79.5, 80.0])  # d = .5, -.5, 1
    assert got["low"] < 0 < got["high"]
    assert got["significant"] is False
    assert format_paired(got).endswith("(n.s.)")
    clear = paired_difference([82.0, 83.0, 84.0], [80.0, 81.1, 81.9])
    assert clear["significant"] is True
    assert format_paired(clear) == (
        f"{clear['mean']:+.2f} [{clear['low']:+.2f}, {clear['high']:+.2f}]"
    )


def test_t_quantiles_match_the_tables():
    assert t_quantile_975(1) == 12.706
    assert t_quantile_975(2) == 4.303
    assert t_quantile_975(4) == 2.776
    assert t_quantile_975(40) == pytest.approx(2.021, abs=2e-3)
    assert t_quantile_975(1000) == 1.960
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_paired_difference_needs_matching_seeds():
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1.0], [0.0])
