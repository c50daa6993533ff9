"""Feed a teacher of another architecture the student's batch in the teacher's own input.

A DiVE teacher may have been trained at another resolution (a ViT fine-tuned at 224 pixels
teaching a ResNet-32 at 32), with other normalisation statistics (ImageNet's instead of
the dataset's) or another channel count (a 3-channel pretrained trunk teaching a grey
Fashion-MNIST student). :class:`TeacherInput` turns the student's augmented, normalised
batch into what the teacher saw in its own training: undo the student's normalisation,
match the channels (grey is repeated; colour is averaged to grey), resize bilinearly
(antialiased when shrinking), apply the teacher's normalisation. The teacher thus sees the
very same augmented (and mixed) images as the student, only re-presented.

Both sides' input is read from their configs (``INPUT.PIXEL_MEAN/STD`` or the dataset's
statistics, ``INPUT.UPSAMPLE_SIZE`` or ``INPUT.CROP_SIZE``, ``MODEL.BACKBONE.IN_CHANNELS``),
so a teacher trained by this framework needs no extra key.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError
from ..utils.model_input import model_input_size, resolve_mean_std

__all__ = ["ModelInput", "TeacherInput", "model_input", "teacher_input_for"]


@dataclass(frozen=True)
class ModelInput:
    """What a model's config feeds it: channels, square side, mean and std (0..1 scale)."""

    channels: int
    size: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]


def model_input(cfg, dataset_mean: Optional[Sequence[float]], dataset_std) -> ModelInput:
    """The input of the model ``cfg`` describes, on a dataset with these statistics."""
    if len(cfg.INPUT.PIXEL_MEAN) == 0 and dataset_mean is None:
        raise ConfigError(
            "The teacher's and the student's normalisation cannot be compared: the training "
            "set has no mean/std statistics; set INPUT.PIXEL_MEAN / INPUT.PIXEL_STD."
        )
    mean, std = resolve_mean_std(
        cfg,
        () if dataset_mean is None else dataset_mean,
        () if dataset_std is None else dataset_std,
    )
    return ModelInput(
        cfg.MODEL.BACKBONE.IN_CHANNELS, model_input_size(cfg), tuple(mean), tuple(std)
    )


def _stats(values: Sequence[float], channels: int) -> torch.Tensor:
    t = torch.tensor([float(v) for v in values], dtype=torch.float32)
    if t.numel() == 1 and channels > 1:
        t = t.expand(channels)
    return t.reshape(1, -1, 1, 1)


class TeacherInput(nn.Module):
    """Student-normalised images -> teacher-normalised images at the teacher's size.

    Args:
        student, teacher: the two models' :class:`ModelInput`.
    """

    def __init__(self, student: ModelInput, teacher: ModelInput):
        super().__init__()
        if {student.channels, teacher.channels} not in ({1, 3}, {student.channels}):
            raise ConfigError(
                f"The teacher takes {teacher.channels}-channel images and the student "
                f"{student.channels}-channel ones; only 1 <-> 3 channels can be converted."
            )
        self.student, self.teacher = student, teacher
        self.register_buffer("s_mean", _stats(student.mean, student.channels), persistent=False)
        self.register_buffer("s_std", _stats(student.std, student.channels), persistent=False)
        self.register_buffer("t_mean", _stats(teacher.mean, teacher.channels), persistent=False)
        self.register_buffer("t_std", _stats(teacher.std, teacher.channels), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() * self.s_std + self.s_mean  # back to the 0..1 scale
        if self.teacher.channels != x.shape[1]:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.mean(1, keepdim=True)
        size = self.teacher.size
        if x.shape[-2:] != (size, size):
            shrink = size < x.shape[-1]
            x = F.interpolate(
                x, (size, size), mode="bilinear", align_corners=False, antialias=shrink
            )
        return (x - self.t_mean) / self.t_std

    def extra_repr(self) -> str:
        s, t = self.student, self.teacher
        return f"{s.channels}x{s.size}px -> {t.channels}x{t.size}px, re-normalised"


def teacher_input_for(student_cfg, teacher_cfg, dataset) -> Optional[TeacherInput]:
    """A :class:`TeacherInput` when the two configs feed their models differently, else None."""
    mean, std = getattr(dataset, "mean", None), getattr(dataset, "std", None)
    student = model_input(student_cfg, mean, std)
    teacher = model_input(teacher_cfg, mean, std)
    return None if student == teacher else TeacherInput(student, teacher)
