"""What the INPUT keys make of a model's input: its normalisation and its side.

Shared by the data pipeline (which produces that input) and the DiVE teacher's input adapter
(which re-presents one model's input as another's).
"""

from typing import Sequence, Tuple

__all__ = ["model_input_size", "resolve_mean_std"]


def resolve_mean_std(cfg, mean: Sequence[float], std: Sequence[float]) -> Tuple[list, list]:
    """INPUT.PIXEL_MEAN / PIXEL_STD when set, else the dataset's own statistics."""
    if len(cfg.INPUT.PIXEL_MEAN) > 0:
        return list(cfg.INPUT.PIXEL_MEAN), list(cfg.INPUT.PIXEL_STD)
    return list(mean), list(std)


def model_input_size(cfg) -> int:
    """The side of the images the model sees: ``INPUT.UPSAMPLE_SIZE`` if set, else
    ``INPUT.CROP_SIZE``."""
    return cfg.INPUT.UPSAMPLE_SIZE or cfg.INPUT.CROP_SIZE
