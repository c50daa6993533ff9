"""RIDE's experts run one after the other against as one batched (grouped) network, behind
``tools/benchmark.py experts`` (``MODEL.RIDE.BATCHED_EXPERTS``)."""

import torch

from ride_dive.engine import setup_cfg
from ride_dive.modeling import build_model
from ride_dive.solver import build_optimizer

from .speed import paired_median_times, speed_variants, step_closures

__all__ = ["print_experts_table"]


def _ride_model(batched: bool, channels_last: bool, num_experts: int):
    """RIDE ResNet-32 (100 classes, cosine heads, RIDE loss) with its optimizer."""
    cfg = setup_cfg(
        "",
        [
            "MODEL.DEVICE",
            "cuda" if torch.cuda.is_available() else "cpu",
            "MODEL.META_ARCHITECTURE",
            "RIDE",
            "MODEL.BACKBONE.NAME",
            "RIDEResNet32",
            "MODEL.RIDE.NUM_EXPERTS",
            str(num_experts),
            "MODEL.RIDE.BATCHED_EXPERTS",
            str(batched),
            "MODEL.CHANNELS_LAST",
            str(channels_last),
            "MODEL.HEAD.NAME",
            "CosineHead",
            "MODEL.LOSS.NAME",
            "RIDELoss",
            "MODEL.LOSS.DRW_EPOCH",
            "0",
        ],
    )
    torch.manual_seed(0)
    model = build_model(cfg, [500 - 4 * c for c in range(100)])
    return model, build_optimizer(cfg, model)


def print_experts_table(num_experts: int, batch_size: int, iters: int) -> None:
    """Print images/s of a training step and an eval forward of RIDE ResNet-32 with its
    experts run one after the other against batched, per precision."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"\nRIDE ResNet-32, {num_experts} experts, 32x32, batch {batch_size}, "
        f"{torch.get_num_threads()} threads, device {device.type}; images/s of a training "
        f"step (fwd+bwd+SGD) and of an eval forward, median of {iters} alternating "
        f"calls\n"
    )
    print("| precision | train loop | train batched | ratio | eval loop | eval batched | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, amp, channels_last in speed_variants(False, device):
        images = torch.randn(batch_size, 3, 32, 32, device=device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, 100, (batch_size,), device=device)
        loop = step_closures(*_ride_model(False, channels_last, num_experts), images, labels, amp)
        batched = step_closures(*_ride_model(True, channels_last, num_experts), images, labels, amp)
        cells = []
        for k in (0, 1):  # train, eval
            t_loop, t_batched = paired_median_times([loop[k], batched[k]], iters, device)
            cells += [
                f"{batch_size / t_loop:.1f}",
                f"{batch_size / t_batched:.1f}",
                f"{t_loop / t_batched:.2f}x",
            ]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
