"""MixUp / CutMix batches (ride_dive/data/mixing.py): soft targets, schedule, determinism."""

import pytest
import torch

from ride_dive.data import MixedBatches


class _Loader:
    def __init__(self, batches):
        self.batches = batches
        self.epochs = []
        self.dataset = "the dataset"

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def _batches(n=3, size=8, classes=5):
    g = torch.Generator().manual_seed(0)
    return [
        (torch.rand(size, 3, 8, 8, generator=g), torch.randint(0, classes, (size,), generator=g))
        for _ in range(n)
    ]


@pytest.mark.parametrize("alphas", [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_soft_targets_are_distributions_over_the_two_mixed_labels(alphas):
    batches = _batches()
    mixed = MixedBatches(_Loader(batches), 5, *alphas)
    torch.manual_seed(3)
    for (images, labels), (out, targets) in zip(batches, mixed):
        assert targets.shape == (8, 5) and targets.dtype == torch.float32
        assert torch.allclose(targets.sum(1), torch.ones(8), atol=1e-6)
        # v2.MixUp/CutMix pair image i with image i-1 (torch.roll by 1).
        pair = labels.roll(1)
        lam = targets.gather(1, labels[:, None]).squeeze(1)
        for i in range(8):
            want = torch.zeros(5)
            want[labels[i]] += lam[i] if labels[i] != pair[i] else 1.0
            want[pair[i]] += 1 - lam[i] if labels[i] != pair[i] else 0.0
            assert torch.allclose(targets[i], want, atol=1e-6)
        assert out.shape == images.shape


def test_mixup_images_are_the_same_lambda_blend():
    ((images, labels),) = _batches(1)
    torch.manual_seed(1)
    out, targets = next(iter(MixedBatches(_Loader([(images, labels)]), 5, mixup_alpha=0.4)))
    # With distinct neighbouring labels, lambda is readable from the target.
    i = next(i for i in range(8) if labels[i] != labels.roll(1)[i])
    lam = targets[i, labels[i]]
    assert torch.allclose(out[i], lam * images[i] + (1 - lam) * images.roll(1, 0)[i], atol=1e-5)


def test_switched_off_for_the_last_epochs_and_probability_zero_gives_one_hot():
    batches = _batches()
    mixed = MixedBatches(_Loader(batches), 5, mixup_alpha=0.4, off_from_epoch=2)
    mixed.set_epoch(1)
    assert mixed.active and mixed.loader.epochs == [1]
    mixed.set_epoch(2)
    assert not mixed.active
    plain = list(mixed)
    assert all(
        torch.equal(a[1], b[1]) and a[1].dtype == torch.int64 for a, b in zip(plain, batches)
    )
    never = MixedBatches(_Loader(batches), 5, mixup_alpha=0.4, prob=0.0)
    for (images, labels), (out, targets) in zip(batches, never):
        assert torch.equal(out, images)
        assert torch.equal(targets, torch.nn.functional.one_hot(labels, 5).float())
    assert mixed.dataset == "the dataset" and len(mixed) == 3  # the wrapped loader's


def test_same_seed_same_mixing():
    batches = _batches()

    def run():
        torch.manual_seed(7)
        return [t for _, t in MixedBatches(_Loader(batches), 5, 0.4, 1.0)]

    assert all(torch.equal(a, b) for a, b in zip(run(), run()))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="MIX_PROB"):
        MixedBatches(_Loader(_batches()), 5, mixup_alpha=0.4, prob=1.5)
    with pytest.raises(ValueError, match="MIXUP_ALPHA"):
        MixedBatches(_Loader(_batches()), 5)
