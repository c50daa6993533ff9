"""Samplers: class-aware structure, square-root / progressive probabilities, sharding."""

import math

import pytest
import torch

from ride_dive.config import ConfigError, get_cfg
from ride_dive.data.samplers import (
    ClassAwareSampler,
    InstanceBalancedSampler,
    ProgressivelyBalancedSampler,
    SquareRootSampler,
    build_sampler,
)

COUNTS = [400, 100, 25, 4]


def lt_labels(counts=COUNTS):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]


def test_instance_balanced_is_a_permutation_per_epoch():
    labels = lt_labels()
    sampler = InstanceBalancedSampler(labels, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(len(labels))) and len(sampler) == len(labels)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


@pytest.mark.parametrize("k", [1, 4])
def test_class_aware_visits_classes_equally_in_runs(k):
    labels = lt_labels()
    sampler = ClassAwareSampler(labels, seed=0, samples_per_class=k)
    order = torch.tensor(list(sampler))
    assert len(order) == len(labels) == len(sampler)
    seq = labels[order]
    counts = torch.bincount(seq, minlength=4)
    assert counts.max() - counts.min() <= k
    full = len(seq) // k
    runs = seq[: full * k].view(full, k)
    assert bool((runs == runs[:, :1]).all())  # each visit takes k items of one class
    passes = runs[:, 0][: full // 4 * 4].view(-1, 4)
    assert all(sorted(p.tolist()) == [0, 1, 2, 3] for p in passes)  # a cycle of all classes
    assert len({tuple(p.tolist()) for p in passes}) > 1  # reshuffled between passes


def test_class_aware_cycles_through_each_class_list():
    labels = lt_labels()
    order = torch.tensor(list(ClassAwareSampler(labels, seed=5, samples_per_class=4)))
    tail = order[labels[order] == 3].tolist()  # 4 members, drawn ~132 times
    members = sorted(torch.nonzero(labels == 3).flatten().tolist())
    for start in range(0, len(tail) - 3, 4):
        assert sorted(tail[start : start + 4]) == members  # one reshuffled pass at a time
    assert len({tuple(tail[s : s + 4]) for s in range(0, 40, 4)}) > 1


def test_class_aware_determinism_per_seed_and_epoch():
    labels = lt_labels()
    a = ClassAwareSampler(labels, seed=1)
    b = ClassAwareSampler(labels, seed=1)
    assert list(a) == list(b)
    epoch0 = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != epoch0
    assert list(ClassAwareSampler(labels, seed=2)) != epoch0


def _frequencies(sampler, labels, epochs):
    seq = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        seq.append(torch.tensor(list(sampler)))
    seq = torch.cat(seq)
    return seq, torch.bincount(labels[seq], minlength=4).double() / len(seq)


def test_square_root_probabilities():
    labels = lt_labels()
    sampler = SquareRootSampler(labels, seed=0)
    expected = torch.tensor([20.0, 10.0, 5.0, 2.0]) / 37.0  # sqrt of COUNTS, normalised
    assert torch.allclose(sampler.class_probabilities(), expected.double())
    seq, freq = _frequencies(sampler, labels, 30)  # ~15,900 draws: std of a share < 0.004
    assert torch.allclose(freq, expected.double(), atol=0.015)
    tail = seq[labels[seq] == 3]
    members = torch.nonzero(labels == 3).flatten()
    per_member = torch.tensor([(tail == m).sum() for m in members]).double() / len(tail)
    assert torch.allclose(per_member, torch.full((4,), 0.25, dtype=torch.float64), atol=0.06)


def test_progressive_probabilities_move_from_instance_to_balanced():
    labels = lt_labels()
    sampler = ProgressivelyBalancedSampler(labels, seed=0, max_epochs=10)
    instance = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    balanced = torch.full((4,), 0.25, dtype=torch.float64)
    assert torch.allclose(sampler.class_probabilities(), instance)
    sampler.set_epoch(3)
    mixed = 0.7 * instance + 0.3 * balanced
    assert torch.allclose(sampler.class_probabilities(), mixed)
    draws = []
    for _ in range(30):
        draws.append(torch.tensor(list(sampler)))
        sampler.seed += 1  # fresh draws at the same epoch
    freq = torch.bincount(labels[torch.cat(draws)], minlength=4).double() / (30 * len(labels))
    assert torch.allclose(freq, mixed, atol=0.015)
    sampler.set_epoch(10)
    assert torch.allclose(sampler.class_probabilities(), balanced)


@pytest.mark.parametrize(
    "cls",
    [InstanceBalancedSampler, ClassAwareSampler, SquareRootSampler, ProgressivelyBalancedSampler],
)
def test_distributed_shards_cover_the_global_sequence(cls):
    labels = lt_labels([7, 4, 2])  # 13 items over 3 ranks: padded to 15
    ranks = [cls(labels, seed=4, num_replicas=3, rank=r) for r in range(3)]
    for sampler in ranks:
        sampler.set_epoch(2)
    glob = ranks[0].global_indices()
    assert all(torch.equal(s.global_indices(), glob) for s in ranks)
    padded = torch.cat([glob, glob[:2]])
    shards = [list(s) for s in ranks]
    assert all(len(shard) == len(s) == 5 for shard, s in zip(shards, ranks))
    for r, shard in enumerate(shards):
        assert shard == padded[r::3].tolist()
    interleaved = [shards[i % 3][i // 3] for i in range(15)]
    assert interleaved == padded.tolist()


def test_build_sampler_from_config():
    cfg = get_cfg()
    cfg.merge_from_list(
        ["DATALOADER.SAMPLER", "ClassAwareSampler", "DATALOADER.SAMPLES_PER_CLASS", 3]
    )
    sampler = build_sampler(cfg, lt_labels(), seed=0, num_replicas=2, rank=1)
    assert isinstance(sampler, ClassAwareSampler) and sampler.samples_per_class == 3
    assert len(sampler) == math.ceil(529 / 2) and sampler.rank == 1
    cfg.merge_from_list(
        ["DATALOADER.SAMPLER", "ProgressivelyBalancedSampler", "SOLVER.MAX_EPOCHS", 7]
    )
    assert build_sampler(cfg, lt_labels(), seed=0).max_epochs == 7
    cfg.merge_from_list(["DATALOADER.SAMPLER", "ClassAwareSampeler"])
    with pytest.raises(ConfigError, match="Did you mean 'ClassAwareSampler'"):
        build_sampler(cfg, lt_labels(), seed=0)
    with pytest.raises(ValueError, match="rank < num_replicas"):
        InstanceBalancedSampler(lt_labels(), num_replicas=2, rank=2)
