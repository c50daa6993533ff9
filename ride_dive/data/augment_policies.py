"""Strong augmentation policies (``INPUT.AUGMENT_POLICY``) and Cutout (``INPUT.CUTOUT``).

The policies are torchvision's own (``transforms.v2``): RandAugment (Cubuk et al. 2020; N
operations of magnitude M), AutoAugment with its CIFAR-10, ImageNet or SVHN policy (Cubuk
et al. 2019) and TrivialAugment-Wide (Müller & Hutter 2021). A v2 transform called on a batch
draws its operation once for the whole batch, so ``PerImagePolicy`` calls it on each uint8
image of the batch: every image gets its own operations, as the papers define them. Its
random draws come from torch's generator forked and seeded from the batch's augmentation
generator, so a batch depends on (SEED, epoch, rank) only and ``--resume`` replays it; the
global generator is left as it was.

Cutout (DeVries & Taylor 2017) zeroes one ``size`` x ``size`` square per normalised image
(zero is the dataset mean), its centre uniform over the image, clipped at the borders. No
torchvision transform draws that square (``RandomErasing`` draws an area and an aspect
ratio), so it is a few tensor ops here.
"""

from typing import Callable, Optional

import torch

from ..config.checks import AUGMENT_POLICIES

__all__ = [
    "AUGMENT_POLICIES",
    "Cutout",
    "PerImagePolicy",
    "build_policy",
    "cutout",
    "policy_transform",
]


def policy_transform(name: str, num_ops: int = 2, magnitude: int = 9, v2: bool = True):
    """The torchvision transform of ``name`` (one of ``AUGMENT_POLICIES``, which the config
    check enforces; ``v2=False``: the PIL-era module, same ops)."""
    if name not in AUGMENT_POLICIES:
        raise ValueError(f"unknown augmentation policy {name!r}; one of {AUGMENT_POLICIES}")
    if v2:
        from torchvision.transforms import v2 as T
    else:
        from torchvision import transforms as T
    if name == "RandAugment":
        return T.RandAugment(num_ops=num_ops, magnitude=magnitude)
    if name == "TrivialAugment":
        return T.TrivialAugmentWide()
    policy = {
        "AutoAugment-CIFAR10": T.AutoAugmentPolicy.CIFAR10,
        "AutoAugment-ImageNet": T.AutoAugmentPolicy.IMAGENET,
        "AutoAugment-SVHN": T.AutoAugmentPolicy.SVHN,
    }[name]
    return T.AutoAugment(policy)


class PerImagePolicy:
    """Apply a torchvision policy to every image of a uint8 batch separately.

    Args:
        transform: a v2 transform taking and returning a uint8 ``(C, H, W)`` tensor.
    """

    def __init__(self, transform: Callable):
        self.transform = transform

    def __call__(self, images: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.stack([self.transform(image) for image in images])


def build_policy(cfg) -> Optional[PerImagePolicy]:
    """``PerImagePolicy`` of ``INPUT.AUGMENT_POLICY`` (None when it is "")."""
    name = cfg.INPUT.AUGMENT_POLICY
    if not name:
        return None
    i = cfg.INPUT
    return PerImagePolicy(policy_transform(name, i.RANDAUGMENT_N, i.RANDAUGMENT_M))


def cutout(
    images: torch.Tensor, size: int, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square (clipped at the borders) of each image, in place.

    ``images`` is a float ``(B, C, H, W)`` batch, already normalised; the centres are drawn
    on ``generator`` (CPU), so the result is the same on any device.
    """
    b, _, h, w = images.shape
    cy = torch.randint(0, h, (b, 1, 1), generator=generator).to(images.device)
    cx = torch.randint(0, w, (b, 1, 1), generator=generator).to(images.device)
    ys = torch.arange(h, device=images.device).view(1, h, 1)
    xs = torch.arange(w, device=images.device).view(1, 1, w)
    low, high = size // 2, size - size // 2  # [c - low, c + high): exactly size wide
    inside = (ys >= cy - low) & (ys < cy + high) & (xs >= cx - low) & (xs < cx + high)
    return images.masked_fill_(inside[:, None], 0.0)


class Cutout:
    """``cutout`` of one normalised ``(C, H, W)`` image with torch's generator: the
    per-sample transform of image-file datasets, whose workers seed it per sample."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return cutout(image[None], self.size)[0]
