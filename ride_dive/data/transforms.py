"""Augmentation: batched tensor ops for in-memory uint8 sets, torchvision for image files."""

from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..config import configurable
from ..utils.model_input import model_input_size, resolve_mean_std
from .augment_policies import Cutout, build_policy, cutout, policy_transform

__all__ = [
    "BatchAugment",
    "build_file_transforms",
    "make_file_transforms",
    "model_input_size",
    "resolve_mean_std",
]


def _center_pads(size: int, target: int) -> Tuple[int, int]:
    """(before, after) padding that centers ``size`` in ``target``; negative values crop."""
    if size >= target:
        before = int(round((size - target) / 2.0))  # torchvision's CenterCrop offset
        return -before, -(size - target - before)
    before = (target - size) // 2
    return before, target - size - before


class BatchAugment:
    """Augment and normalise a whole uint8 batch ``(B, C, H, W)`` with a few tensor ops.

    Training: zero-pad by ``padding`` (more if the crop would not fit), take a random
    ``crop_size`` window per sample, flip half of the samples horizontally, apply the
    ``policy`` (RandAugment, AutoAugment, ... per image; ``augment_policies.py``), normalise,
    then Cutout when ``cutout_size`` > 0. All random numbers come from the given CPU
    ``torch.Generator``, so a batch is reproducible on any device. Evaluation: center crop
    or zero-pad to ``crop_size`` (only if the size differs), then normalise. Output is
    float32 ``(x / 255 - mean) / std``.
    """

    @configurable
    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        crop_size: int,
        padding: int = 0,
        hflip: bool = False,
        train: bool = True,
        policy: Optional[Callable] = None,
        cutout_size: int = 0,
        upsample_size: int = 0,
    ):
        """Store the settings.

        Args:
            mean, std: per-channel statistics on the 0..1 scale.
            crop_size: side of the output images.
            padding: zero padding on each side before the random crop (training only).
            hflip: flip half of the samples horizontally (training only).
            train: random crop and flip if True, else center crop / pad.
            policy: ``policy(uint8 batch, generator) -> uint8 batch`` after the crop and
                flip (training only), e.g. ``PerImagePolicy``.
            cutout_size: side of the Cutout square (training only; 0 = off).
            upsample_size: resize every output batch to this side (bilinear), e.g. 224
                for a pretrained trunk on 32-pixel images; 0 = off.
        """
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std need equal lengths and std > 0; got {mean}, {std}")
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.crop_size = int(crop_size)
        self.padding = int(padding)
        self.hflip = bool(hflip)
        self.train = bool(train)
        self.policy = policy
        self.cutout_size = int(cutout_size)
        self.upsample_size = int(upsample_size)
        std_t = torch.tensor(self.std, dtype=torch.float32)
        # One multiply-add: (x / 255 - m) / s == x * (1 / (255 s)) - m / s.
        self._scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1)
        self._shift = (-torch.tensor(self.mean) / std_t).view(1, -1, 1, 1)
        self._cache: Dict[torch.device, Tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_config(cls, cfg, mean: Sequence[float], std: Sequence[float], train: bool = True):
        mean, std = resolve_mean_std(cfg, mean, std)
        return dict(
            mean=mean,
            std=std,
            crop_size=cfg.INPUT.CROP_SIZE,
            padding=cfg.INPUT.PADDING,
            hflip=cfg.INPUT.HFLIP,
            train=train,
            policy=build_policy(cfg) if train else None,
            cutout_size=cfg.INPUT.CUTOUT if train else 0,
            upsample_size=cfg.INPUT.UPSAMPLE_SIZE,
        )

    def __call__(
        self, images: torch.Tensor, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """Return the float32 batch; ``generator`` drives the random crops and flips."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"BatchAugment expects uint8 (B, C, H, W); got {images.dtype} {tuple(images.shape)}"
            )
        if images.shape[1] != len(self.mean):
            raise ValueError(
                f"Images have {images.shape[1]} channels but {len(self.mean)} mean/std values "
                f"were given; fix INPUT.PIXEL_MEAN / INPUT.PIXEL_STD or MODEL.BACKBONE.IN_CHANNELS."
            )
        if not self.train:
            return self._upsample(self._normalize(self._crop_test(images)))
        out = self._crop_train(images, generator)
        if self.policy is not None:
            out = self.policy(out, generator)
        out = self._normalize(out)
        out = cutout(out, self.cutout_size, generator) if self.cutout_size > 0 else out
        return self._upsample(out)

    def _upsample(self, images: torch.Tensor) -> torch.Tensor:
        size = self.upsample_size
        if size <= 0 or images.shape[-2:] == (size, size):
            return images
        # Bilinear is linear, so resizing after the normalisation equals resizing before it.
        return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)

    def _crop_train(self, images: torch.Tensor, generator) -> torch.Tensor:
        b, c, h, w = images.shape
        s = self.crop_size
        pad_h = max(self.padding, -(-(s - h) // 2))
        pad_w = max(self.padding, -(-(s - w) // 2))
        padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h)) if pad_h or pad_w else images
        hp, wp = h + 2 * pad_h, w + 2 * pad_w
        # Draw on the CPU generator (same numbers on any device), move only 3 x B values.
        draws = torch.stack(
            [
                torch.randint(0, hp - s + 1, (b,), generator=generator),
                torch.randint(0, wp - s + 1, (b,), generator=generator),
                (torch.rand(b, generator=generator) < 0.5).long()
                if self.hflip
                else torch.zeros(b, dtype=torch.long),
            ],
            dim=1,
        ).to(images.device, non_blocking=True)
        oy, ox, flip = draws[:, 0:1], draws[:, 1:2], draws[:, 2:3].bool()
        ar = torch.arange(s, device=images.device)
        rows = oy + ar
        cols = ox + torch.where(flip, s - 1 - ar, ar)
        flat = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, s * s).expand(b, c, s * s)
        out = padded.reshape(b, c, hp * wp).gather(2, flat)
        return out.view(b, c, s, s)

    def _crop_test(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        if h == self.crop_size and w == self.crop_size:
            return images
        top, bottom = _center_pads(h, self.crop_size)
        left, right = _center_pads(w, self.crop_size)
        return F.pad(images, (left, right, top, bottom))

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        device = images.device
        if device not in self._cache:
            self._cache[device] = (self._scale.to(device), self._shift.to(device))
        scale, shift = self._cache[device]
        return images.float().mul_(scale).add_(shift)


def make_file_transforms(
    train: bool,
    crop_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    hflip: bool = True,
    color_jitter: float = 0.0,
    test_resize: int = 256,
    policy: str = "",
    policy_ops: Tuple[int, int] = (2, 9),
    cutout_size: int = 0,
):
    """torchvision pipeline for PIL images (ImageNet-style recipes).

    Training: RandomResizedCrop(crop_size), horizontal flip, ColorJitter(color_jitter for
    brightness/contrast/saturation) when > 0, the augmentation ``policy`` (RandAugment with
    ``policy_ops`` = (N, M), AutoAugment, TrivialAugment; per image, in the loader worker),
    ToTensor, Normalize, Cutout(``cutout_size``) when > 0. Test: Resize(test_resize) of the
    shorter side, CenterCrop(crop_size), ToTensor, Normalize.
    """
    from torchvision import transforms as T

    if train:
        steps = [T.RandomResizedCrop(crop_size)]
        if hflip:
            steps.append(T.RandomHorizontalFlip())
        if color_jitter > 0:
            steps.append(T.ColorJitter(color_jitter, color_jitter, color_jitter))
        if policy:
            steps.append(policy_transform(policy, *policy_ops, v2=False))
    else:
        steps = [T.Resize(test_resize), T.CenterCrop(crop_size)]
    steps += [T.ToTensor(), T.Normalize(list(mean), list(std))]
    if train and cutout_size > 0:
        # The worker's torch generator is seeded per sample (loaders.py): reproducible.
        steps.append(Cutout(cutout_size))
    return T.Compose(steps)


def build_file_transforms(cfg, train: bool, mean: Sequence[float], std: Sequence[float]):
    """``make_file_transforms`` from cfg.INPUT; ``mean``/``std`` are the dataset defaults."""
    mean, std = resolve_mean_std(cfg, mean, std)
    return make_file_transforms(
        train,
        cfg.INPUT.CROP_SIZE,
        mean,
        std,
        cfg.INPUT.HFLIP,
        cfg.INPUT.COLOR_JITTER,
        cfg.INPUT.TEST_RESIZE,
        cfg.INPUT.AUGMENT_POLICY,
        (cfg.INPUT.RANDAUGMENT_N, cfg.INPUT.RANDAUGMENT_M),
        cfg.INPUT.CUTOUT,
    )
