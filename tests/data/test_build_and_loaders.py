"""Registration, SyntheticLT, and the train / test loaders (length, determinism, sharding)."""

import numpy as np
import pytest
import torch
from PIL import Image

from ride_dive.config import ConfigError, get_cfg
from ride_dive.data import (
    DATASET_REGISTRY,
    SAMPLER_REGISTRY,
    InMemoryImageDataset,
    ListFileDataset,
    build_datasets,
    build_test_loader,
    build_train_loader,
)
from ride_dive.data.datasets.lt_generator import lt_counts
from ride_dive.data.transforms import make_file_transforms


def synthetic_cfg(*opts):
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "DATASETS.NAME",
            "SyntheticLT",
            "DATASETS.IMBALANCE_FACTOR",
            10,
            "INPUT.CROP_SIZE",
            16,
            "SOLVER.BATCH_SIZE",
            32,
            *opts,
        ]
    )
    return cfg


def test_every_name_is_registered():
    for name in (
        "CIFAR10LT",
        "CIFAR100LT",
        "FashionMNISTLT",
        "ImageNetLT",
        "PlacesLT",
        "INaturalist2018",
        "SyntheticLT",
    ):
        assert name in DATASET_REGISTRY and DATASET_REGISTRY.get(name).__name__ == name
    for name in (
        "InstanceBalancedSampler",
        "ClassAwareSampler",
        "SquareRootSampler",
        "ProgressivelyBalancedSampler",
    ):
        assert SAMPLER_REGISTRY.get(name).__name__ == name
    with pytest.raises(ConfigError, match="DATASETS.NAME='CIFAR10' .*CIFAR10LT"):
        build_datasets(synthetic_cfg("DATASETS.NAME", "CIFAR10"))


def test_synthetic_lt_from_config():
    cfg = synthetic_cfg(
        "MODEL.BACKBONE.IN_CHANNELS",
        1,
        "DATASETS.SYNTHETIC.IMAGE_SIZE",
        12,
        "DATASETS.MAX_PER_CLASS",
        40,
    )
    splits = build_datasets(cfg)
    assert splits.class_counts == lt_counts(40, 10, 10.0)
    assert splits.train.images.shape[1:] == (1, 12, 12)
    assert splits.train.images.dtype == torch.uint8
    assert torch.equal(torch.bincount(splits.test.labels), torch.full((10,), 20))
    again = build_datasets(cfg)
    assert torch.equal(again.train.images, splits.train.images)


def test_synthetic_classes_are_separable():
    splits = build_datasets(synthetic_cfg())

    def features(ds):
        return ds.images.float().mean(dim=(2, 3))

    train_f, test_f = features(splits.train), features(splits.test)
    centroids = torch.stack([train_f[splits.train.labels == c].mean(0) for c in range(10)])
    predicted = torch.cdist(test_f, centroids).argmin(1)
    assert (predicted == splits.test.labels).float().mean() > 0.9


def test_synthetic_val_sources():
    remainder = build_datasets(
        synthetic_cfg("DATASETS.VAL_SOURCE", "train_remainder", "DATASETS.VAL_PER_CLASS", 5)
    )
    train_rows = {tuple(x.flatten().tolist()) for x in remainder.train.images}
    val_rows = [tuple(x.flatten().tolist()) for x in remainder.val.images]
    assert not train_rows & set(val_rows)
    assert torch.equal(torch.bincount(remainder.val.labels), torch.full((10,), 5))
    from_test = build_datasets(
        synthetic_cfg("DATASETS.VAL_SOURCE", "test", "DATASETS.VAL_PER_CLASS", 5)
    )
    assert len(from_test.val) == 50 and len(from_test.test) == 150
    test_rows = {tuple(x.flatten().tolist()) for x in from_test.test.images}
    assert not test_rows & {tuple(x.flatten().tolist()) for x in from_test.val.images}


def epoch_batches(loader, epoch):
    loader.set_epoch(epoch)
    return list(loader)


@pytest.mark.parametrize("drop_last", [False, True])
def test_train_loader_length_and_batches(drop_last):
    cfg = synthetic_cfg("DATALOADER.DROP_LAST", drop_last)
    train = build_datasets(cfg).train
    n = sum(lt_counts(100, 10, 10.0))
    assert len(train) == n and n % 32 != 0
    loader = build_train_loader(cfg, train, seed=0)
    out = epoch_batches(loader, 0)
    assert len(loader) == len(out) == (n // 32 if drop_last else n // 32 + 1)
    assert all(x.shape == (32, 3, 16, 16) and x.dtype == torch.float32 for x, _ in out[:-1])
    assert out[-1][0].shape[0] == (32 if drop_last else n % 32)
    labels = torch.cat([y for _, y in out])
    if not drop_last:  # instance-balanced: every image exactly once
        assert torch.equal(torch.bincount(labels), torch.bincount(train.labels))
    sharded = build_train_loader(cfg, train, seed=0, num_replicas=2, rank=1)
    per_rank = -(-n // 2)
    assert len(sharded) == (per_rank // 16 if drop_last else -(-per_rank // 16))
    assert next(iter(sharded))[0].shape[0] == 16


def test_train_loader_epochs_are_reproducible():
    cfg = synthetic_cfg("DATALOADER.SAMPLER", "ClassAwareSampler")
    train = build_datasets(cfg).train
    running = build_train_loader(cfg, train, seed=7)
    for epoch in range(3):
        seen = epoch_batches(running, epoch)
    resumed = build_train_loader(cfg, train, seed=7, device="cpu")
    replay = epoch_batches(resumed, 2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(seen, replay))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(replay, list(resumed)))  # re-iterate
    other = epoch_batches(resumed, 3)
    assert not torch.equal(other[0][0], replay[0][0])
    reseeded = epoch_batches(build_train_loader(cfg, train, seed=8), 2)
    assert not torch.equal(reseeded[0][0], replay[0][0])


def test_augmentation_depends_on_epoch_not_only_on_order():
    image = torch.arange(3 * 16 * 16).remainder(251).to(torch.uint8).view(1, 3, 16, 16)
    dataset = InMemoryImageDataset(
        image.expand(64, -1, -1, -1).contiguous(),
        torch.zeros(64, dtype=torch.long),
        1,
        mean=[0.5] * 3,
        std=[0.5] * 3,
    )
    loader = build_train_loader(synthetic_cfg(), dataset, seed=0)  # order cannot matter here
    first = epoch_batches(loader, 0)[0][0]
    assert torch.equal(first, epoch_batches(loader, 0)[0][0])
    assert not torch.equal(first, epoch_batches(loader, 1)[0][0])
    other_rank = build_train_loader(synthetic_cfg(), dataset, seed=0, num_replicas=2, rank=1)
    assert not torch.equal(first[:16], epoch_batches(other_rank, 0)[0][0])


def test_test_loader_shards_without_duplicates():
    images = torch.randint(0, 256, (23, 3, 16, 16), dtype=torch.uint8)
    labels = torch.arange(23) % 4
    dataset = InMemoryImageDataset(images, labels, 4, mean=[0.5] * 3, std=[0.25] * 3)
    cfg = synthetic_cfg("TEST.BATCH_SIZE", 12)
    loaders = [build_test_loader(cfg, dataset, num_replicas=3, rank=r) for r in range(3)]
    assert all(loader.dataset is dataset for loader in loaders)
    assert [len(loader.indices) for loader in loaders] == [7, 8, 8]
    batches = [b for loader in loaders for b in loader]
    assert sum(len(loader) for loader in loaders) == len(batches) == 6  # per-rank batch 4
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
    expected = (images.float() / 255 - 0.5) / 0.25
    assert torch.allclose(torch.cat([x for x, _ in batches]), expected, atol=1e-5)


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.RandomState(0)
    lines = []
    for i in range(10):
        pixels = rng.randint(0, 256, (12, 12, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png {i % 3}")
    (tmp_path / "list.txt").write_text("\n".join(lines))
    transform = make_file_transforms(True, 8, [0.5] * 3, [0.5] * 3)
    return ListFileDataset(str(tmp_path), str(tmp_path / "list.txt"), transform, num_classes=3)


def test_file_train_loader_is_reproducible_across_workers(image_files):
    cfg = synthetic_cfg("SOLVER.BATCH_SIZE", 4, "DATALOADER.NUM_WORKERS", 0)
    single = build_train_loader(cfg, image_files, seed=1)
    assert len(single) == 3
    first = epoch_batches(single, 1)
    assert [x.shape for x, _ in first] == [(4, 3, 8, 8)] * 2 + [(2, 3, 8, 8)]
    cfg.merge_from_list(["DATALOADER.NUM_WORKERS", 2])
    workers = build_train_loader(cfg, image_files, seed=1)
    same = epoch_batches(workers, 1)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, same))
    assert not torch.equal(epoch_batches(workers, 2)[0][0], first[0][0])


def test_file_loaders_keep_the_global_rng_and_shard(image_files):
    cfg = synthetic_cfg("SOLVER.BATCH_SIZE", 4, "DATALOADER.NUM_WORKERS", 0, "TEST.BATCH_SIZE", 3)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    epoch_batches(build_train_loader(cfg, image_files, seed=1), 0)
    assert torch.equal(torch.rand(3), expected)
    loaders = [build_test_loader(cfg, image_files, num_replicas=2, rank=r) for r in range(2)]
    labels = torch.cat([y for loader in loaders for _, y in loader])
    assert torch.equal(labels, image_files.labels)
    assert loaders[1].indices == range(5, 10) and loaders[0].dataset is image_files
