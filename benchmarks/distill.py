"""The distillation step against a plain step, behind ``tools/benchmark.py distill`` and
``speed``: the teacher's forward is the whole extra cost of a DiVE / RIDE-DiVE step."""

import torch

from ride_dive.engine import setup_cfg
from ride_dive.modeling import build_model
from ride_dive.modeling.teacher import FrozenTeacher
from ride_dive.solver import build_optimizer

from .speed import (
    NUM_CLASSES,
    PRECISIONS,
    default_precision,
    paired_median_times,
    precision_note,
    step_closures,
)

__all__ = ["print_distill_table"]

_RIDE_OPTS = [
    "MODEL.META_ARCHITECTURE",
    "RIDE",
    "MODEL.BACKBONE.NAME",
    "RIDEResNet32",
    "MODEL.HEAD.NAME",
    "CosineHead",
    "MODEL.LOSS.NAME",
    "RIDELoss",
]


def _distill_model(opts, channels_last: bool, device):
    """A model (10 classes) with its optimizer, built from ``opts`` overrides."""
    cfg = setup_cfg(
        "", ["MODEL.DEVICE", device.type, "MODEL.CHANNELS_LAST", str(channels_last)] + opts
    )
    torch.manual_seed(0)
    model = build_model(cfg, [500 // (c + 1) for c in range(NUM_CLASSES)])
    return model, build_optimizer(cfg, model)


def print_distill_table(batch_size: int, iters: int) -> None:
    """Print images/s of a plain step and of the distillation step (teacher folded, and not
    folded, in the same alternation) for DiVE and RIDE-DiVE, at fp32 and at the default
    precision of the device (:func:`default_precision`), with their cost ratios."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    setups = [
        (
            "DiVE: ResNet-32 <- ResNet-32",
            ["MODEL.LOSS.NAME", "BalancedSoftmaxLoss"],
            ["MODEL.LOSS.NAME", "DiVELoss"],
            ["MODEL.LOSS.NAME", "BalancedSoftmaxLoss"],
        ),
        (
            "RIDE-DiVE: 4E <- 6E",
            _RIDE_OPTS
            + ["MODEL.RIDE.NUM_EXPERTS", "4", "MODEL.LOSS.RIDE.BASE_LOSS", "BalancedSoftmaxLoss"],
            _RIDE_OPTS + ["MODEL.RIDE.NUM_EXPERTS", "4", "MODEL.LOSS.RIDE.BASE_LOSS", "DiVELoss"],
            _RIDE_OPTS
            + ["MODEL.RIDE.NUM_EXPERTS", "6", "MODEL.LOSS.RIDE.BASE_LOSS", "BalancedSoftmaxLoss"],
        ),
    ]
    print(
        f"\nDistillation step vs plain step, 32x32, batch {batch_size}, "
        f"{torch.get_num_threads()} threads, device {device.type}; training images/s, "
        f"median of {iters} alternating calls; "
        f"{precision_note(device)}\n"
    )
    print("| setup | precision | plain step | distillation step | cost ratio |")
    print("|---|---|---|---|---|")
    for setup, plain_opts, student_opts, teacher_opts in setups:
        # fp32 and what the base configs train with here (bf16 + channels_last where bf16
        # is native, else fp32 + channels_last).
        for name, amp, channels_last in [PRECISIONS[0], default_precision(device)]:
            images = torch.randn(batch_size, 3, 32, 32, device=device)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = torch.randint(0, NUM_CLASSES, (batch_size,), device=device)
            plain = step_closures(
                *_distill_model(plain_opts, channels_last, device), images, labels, amp
            )[0]
            # The teacher as the trainer attaches it (BatchNorms folded) and, timed in the
            # same alternation, with its BatchNorms as trained: what the folding saves.
            variants = []
            for fold in (True, False):
                student, optimizer = _distill_model(student_opts, channels_last, device)
                teacher = _distill_model(teacher_opts, channels_last, device)[0]
                student.attach_teacher(FrozenTeacher(teacher, fold_bn=fold))
                variants.append(step_closures(student, optimizer, images, labels, amp)[0])
            t_plain, *t_distill = paired_median_times([plain, *variants], iters, device)
            for label, t in zip(("", ", teacher BN not folded"), t_distill):
                print(
                    f"| {setup} | {name}{label} | {batch_size / t_plain:.1f} | "
                    f"{batch_size / t:.1f} | {t / t_plain:.2f}x |",
                    flush=True,
                )
