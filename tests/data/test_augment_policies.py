"""Strong augmentation policies and Cutout on the batched uint8 path (data/augment_policies.py)."""

import pytest
import torch
from PIL import Image

from ride_dive.config import ConfigError, assert_cfg, get_cfg
from ride_dive.data import BatchAugment
from ride_dive.data.augment_policies import AUGMENT_POLICIES, cutout
from ride_dive.data.transforms import make_file_transforms


def _augment(policy="RandAugment", cutout_size=0, channels=3):
    cfg = get_cfg()
    cfg.INPUT.CROP_SIZE = 16
    cfg.INPUT.PADDING = 2
    cfg.INPUT.AUGMENT_POLICY = policy
    cfg.INPUT.CUTOUT = cutout_size
    return BatchAugment(cfg, mean=[0.5] * channels, std=[0.25] * channels, train=True)


def _images(n=16, channels=3, same=False):
    g = torch.Generator().manual_seed(0)
    if same:
        one = torch.randint(0, 256, (1, channels, 16, 16), generator=g, dtype=torch.uint8)
        return one.expand(n, -1, -1, -1).contiguous()
    return torch.randint(0, 256, (n, channels, 16, 16), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("policy", AUGMENT_POLICIES)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_policy_runs_on_grey_and_colour_batches(policy, channels):
    out = _augment(policy, channels=channels)(
        _images(channels=channels), torch.Generator().manual_seed(1)
    )
    assert out.shape == (16, channels, 16, 16) and out.dtype == torch.float32


def test_each_image_gets_its_own_operations_and_the_generator_decides_them():
    augment, images = _augment(), _images(same=True)
    a = augment(images, torch.Generator().manual_seed(5))
    b = augment(images, torch.Generator().manual_seed(5))
    c = augment(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Sixteen copies of one image: a per-batch draw would make many identical after the
    # policy (flips and crops aside, which the plain pipeline also has); per image they differ.
    plain = _augment(policy="")(images, torch.Generator().manual_seed(5))
    changed = [not torch.equal(x, y) for x, y in zip(a, plain)]
    assert sum(changed) >= 12


def test_the_global_generator_is_left_alone():
    state = torch.get_rng_state()
    _augment()(_images(), torch.Generator().manual_seed(2))
    assert torch.equal(state, torch.get_rng_state())


def test_cutout_zeroes_one_clipped_square_per_image():
    images = torch.ones(6, 2, 10, 12)
    out = cutout(images.clone(), 4, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    cy = torch.randint(0, 10, (6, 1, 1), generator=g).flatten()
    cx = torch.randint(0, 12, (6, 1, 1), generator=g).flatten()
    for i in range(6):
        want = torch.ones(10, 12)
        want[max(cy[i] - 2, 0) : cy[i] + 2, max(cx[i] - 2, 0) : cx[i] + 2] = 0
        for c in range(2):
            assert torch.equal(out[i, c], want)


def test_cutout_comes_after_normalisation():
    out = _augment(policy="", cutout_size=6)(_images(), torch.Generator().manual_seed(0))
    zero = (out == 0).all(dim=1)  # zero in every channel: the cut square (the mean)
    assert all(8 <= int(z.sum()) <= 36 for z in zero)


def test_policy_names_are_checked_with_the_closest_ones():
    cfg = get_cfg()
    cfg.INPUT.AUGMENT_POLICY = "randaugment"
    with pytest.raises(ConfigError, match="Did you mean: RandAugment"):
        assert_cfg(cfg)
    cfg.INPUT.AUGMENT_POLICY = "RandAugment"
    cfg.INPUT.RANDAUGMENT_M = 31
    with pytest.raises(ConfigError, match="RANDAUGMENT_M must be in"):
        assert_cfg(cfg)


def test_image_file_pipeline_takes_the_policy_and_cutout():
    transform = make_file_transforms(
        True, 24, [0.5] * 3, [0.25] * 3, policy="AutoAugment-ImageNet", cutout_size=8
    )
    torch.manual_seed(0)
    image = Image.new("RGB", (40, 30), (120, 60, 30))
    out = transform(image)
    assert out.shape == (3, 24, 24)
    assert int((out == 0).all(dim=0).sum()) > 0  # the Cutout square
