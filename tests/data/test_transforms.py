"""BatchAugment (crop offsets, flips, normalisation, determinism) and file transforms."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ride_dive.config import get_cfg
from ride_dive.data.transforms import BatchAugment, build_file_transforms

IDENTITY = dict(mean=[0.0], std=[1.0 / 255.0])  # output == uint8 input, as floats


def unique_image(batch, size=8):
    """Pixels 1..size*size (never 0, so zero padding is recognisable)."""
    img = torch.arange(1, size * size + 1, dtype=torch.uint8).view(1, 1, size, size)
    return img.expand(batch, 1, size, size).contiguous()


def locate(crop, padded):
    """(oy, ox, flipped) of ``crop`` inside ``padded`` (2-D tensors), or None."""
    s = crop.shape[-1]
    for oy in range(padded.shape[0] - s + 1):
        for ox in range(padded.shape[1] - s + 1):
            window = padded[oy : oy + s, ox : ox + s]
            if torch.equal(window, crop):
                return oy, ox, False
            if torch.equal(window.flip(-1), crop):
                return oy, ox, True
    return None


def test_random_crops_are_windows_of_the_padded_image():
    images = unique_image(400)
    aug = BatchAugment(**IDENTITY, crop_size=8, padding=2, hflip=True)
    out = aug(images, torch.Generator().manual_seed(0))
    assert out.shape == (400, 1, 8, 8) and out.dtype == torch.float32
    padded = F.pad(images[0, 0].float(), (2, 2, 2, 2))
    found = [locate(o[0], padded) for o in out]
    assert None not in found
    offsets = {(oy, ox) for oy, ox, _ in found}
    assert offsets == {(y, x) for y in range(5) for x in range(5)}  # all 25, none outside
    flips = sum(f for _, _, f in found)
    assert 150 < flips < 250


def test_flip_only_and_no_flip():
    images = unique_image(200)
    flipped = BatchAugment(**IDENTITY, crop_size=8, padding=0, hflip=True)(
        images, torch.Generator().manual_seed(1)
    )
    is_flip = [torch.equal(o, images[0].float().flip(-1)) for o in flipped]
    is_same = [torch.equal(o, images[0].float()) for o in flipped]
    assert all(a != b for a, b in zip(is_flip, is_same)) and 70 < sum(is_flip) < 130
    plain = BatchAugment(**IDENTITY, crop_size=8, padding=0, hflip=False)(images)
    assert torch.equal(plain, images.float())


def test_normalisation_values():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    out = BatchAugment(mean, std, crop_size=4, train=False)(images.contiguous())
    expected = [(0 - 0.1) / 0.5, (0.2 - 0.2) / 0.25, (1.0 - 0.3) / 2.0]
    for c in range(3):
        assert torch.allclose(out[:, c], torch.full((2, 4, 4), expected[c]), atol=1e-6)


def test_determinism_given_a_generator():
    images = torch.randint(0, 256, (16, 3, 12, 12), dtype=torch.uint8)
    aug = BatchAugment([0.5] * 3, [0.2] * 3, crop_size=10, padding=3, hflip=True)
    a = aug(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, aug(images, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, aug(images, torch.Generator().manual_seed(6)))


def test_eval_center_crop_and_pad():
    big = torch.randint(0, 256, (2, 1, 10, 10), dtype=torch.uint8)
    out = BatchAugment(**IDENTITY, crop_size=8, train=False)(big)
    assert torch.equal(out, big[:, :, 1:9, 1:9].float())
    small = unique_image(2, size=6)
    out = BatchAugment(**IDENTITY, crop_size=8, train=False)(small)
    assert torch.equal(out[:, :, 1:7, 1:7], small.float())
    assert out[:, :, 0].abs().sum() == 0 and out[:, :, :, 7].abs().sum() == 0


def test_crop_larger_than_padded_image_pads_as_needed():
    images = unique_image(50, size=4)
    out = BatchAugment(**IDENTITY, crop_size=6, padding=0)(images, torch.Generator())
    assert out.shape == (50, 1, 6, 6)
    assert all((o > 0).sum() == 16 for o in out)  # the whole image lies inside each crop


def test_errors_and_config():
    aug = BatchAugment([0.5] * 3, [0.5] * 3, crop_size=4)
    with pytest.raises(ValueError, match="1 channels but 3 mean/std values"):
        aug(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        aug(torch.zeros(1, 3, 4, 4))
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "INPUT.PIXEL_MEAN",
            [0.25],
            "INPUT.PIXEL_STD",
            [0.5],
            "INPUT.CROP_SIZE",
            6,
            "INPUT.PADDING",
            1,
        ]
    )
    built = BatchAugment(cfg, mean=[0.9], std=[0.9], train=False)
    assert built.mean == [0.25] and built.std == [0.5] and built.crop_size == 6
    assert built.padding == 1 and not built.train


def test_file_transforms_train_and_test():
    cfg = get_cfg()
    cfg.merge_from_list(["INPUT.CROP_SIZE", 8, "INPUT.TEST_RESIZE", 10, "INPUT.COLOR_JITTER", 0.4])
    image = Image.new("RGB", (20, 14), (10, 20, 30))
    train = build_file_transforms(cfg, True, [0.5] * 3, [0.5] * 3)
    assert any(type(t).__name__ == "ColorJitter" for t in train.transforms)
    assert train(image).shape == (3, 8, 8)
    test = build_file_transforms(cfg, False, [0.0] * 3, [1.0] * 3)
    out = test(image)
    assert out.shape == (3, 8, 8)
    assert torch.allclose(out[:, 4, 4], torch.tensor([10, 20, 30]) / 255.0, atol=1e-6)
    cfg.merge_from_list(["INPUT.COLOR_JITTER", 0.0])
    plain = build_file_transforms(cfg, True, [0.5] * 3, [0.5] * 3)
    assert not any(type(t).__name__ == "ColorJitter" for t in plain.transforms)
