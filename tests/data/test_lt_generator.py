"""The standard LT generator and validation splits against docs/METHODS.md section 1."""

import numpy as np
import pytest

from ride_dive.data.datasets.lt_generator import (
    lt_counts,
    make_lt_split,
    select_lt_indices,
    val_from_test,
    val_from_train_remainder,
)


def reference_lt_indices(labels, counts, seed=0):
    """The papers' generator: seed the global NumPy RNG once, shuffle each class in turn."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        kept = []
        for cls, count in enumerate(counts):
            idx = np.where(labels == cls)[0]
            np.random.shuffle(idx)
            kept.append(idx[:count])
        return np.concatenate(kept)
    finally:
        np.random.set_state(state)


@pytest.mark.parametrize(
    "n_max,classes,sizes",
    [
        (500, 100, {100: 10847, 50: 12608, 10: 19573}),
        (5000, 10, {100: 12406, 50: 13996, 10: 20431}),
    ],
)
def test_published_training_sizes(n_max, classes, sizes):
    for factor, size in sizes.items():
        assert sum(lt_counts(n_max, classes, float(factor))) == size


def test_counts_follow_the_formula():
    counts = lt_counts(1000, 10, 100.0)
    expected = [int(1000 * 0.01 ** (i / 9)) for i in range(10)]
    assert counts == expected
    assert counts[0] == 1000 and counts[-1] == 10
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    assert lt_counts(7, 1, 10.0) == [7]
    with pytest.raises(ValueError, match="imbalance_factor"):
        lt_counts(100, 10, 0.5)


def test_selection_matches_global_rng_reference_and_keeps_global_state():
    rng = np.random.RandomState(123)
    labels = rng.permutation(np.repeat(np.arange(10), 300))
    counts = lt_counts(300, 10, 20.0)
    np.random.seed(99)
    before = np.random.get_state()[1].copy()
    got = select_lt_indices(labels, counts, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)
    assert np.array_equal(got, reference_lt_indices(labels, counts, seed=0))
    assert np.array_equal(np.bincount(labels[got], minlength=10), counts)
    assert not np.array_equal(got, select_lt_indices(labels, counts, seed=1))


def test_selection_rejects_too_large_counts():
    labels = np.repeat(np.arange(3), 5)
    with pytest.raises(ValueError, match="class 0.*MAX_PER_CLASS"):
        select_lt_indices(labels, [6, 2, 1])


def test_val_from_train_remainder_is_disjoint_and_balanced():
    labels = np.random.RandomState(0).permutation(np.repeat(np.arange(5), 40))
    kept = select_lt_indices(labels, lt_counts(30, 5, 10.0))
    val = val_from_train_remainder(labels, kept, 8, 5, seed=0)
    assert not set(val) & set(kept)
    assert len(set(val)) == len(val) == 40
    assert np.array_equal(np.bincount(labels[val]), [8] * 5)
    with pytest.raises(ValueError, match="class 0.*only 10 are left"):
        val_from_train_remainder(labels, kept, 11, 5)


def test_val_from_test_moves_images_out_of_test():
    test_labels = np.tile(np.arange(4), 10)
    val, rest = val_from_test(test_labels, 3, 4, seed=0)
    assert np.array_equal(np.bincount(test_labels[val]), [3] * 4)
    assert np.array_equal(np.bincount(test_labels[rest]), [7] * 4)
    assert not set(val) & set(rest)
    assert sorted(np.concatenate([val, rest]).tolist()) == list(range(40))
    assert np.all(np.diff(rest) > 0)  # the remaining test set keeps file order
    with pytest.raises(ValueError, match="more than 10 test images of class 0"):
        val_from_test(test_labels, 10, 4)


def test_make_lt_split_sources_and_errors():
    train = np.repeat(np.arange(4), 20)
    test = np.repeat(np.arange(4), 5)
    none = make_lt_split(train, test, 4, 10, 5.0)
    assert none.val is None and none.test is None and none.val_from == "none"
    remainder = make_lt_split(
        train, test, 4, 10, 5.0, val_source="train_remainder", val_per_class=2
    )
    assert remainder.val_from == "train" and len(remainder.val) == 8
    assert np.array_equal(remainder.train, none.train)
    from_test = make_lt_split(train, test, 4, 10, 5.0, val_source="test", val_per_class=2)
    assert from_test.val_from == "test" and len(from_test.test) == 12
    with pytest.raises(ValueError, match="VAL_PER_CLASS > 0"):
        make_lt_split(train, test, 4, 10, 5.0, val_source="test")
    with pytest.raises(ValueError, match="VAL_SOURCE must be one of"):
        make_lt_split(train, test, 4, 10, 5.0, val_source="val")
