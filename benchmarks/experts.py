"""RIDE's experts run one after the other against as one batched (grouped) network, behind
``tools/benchmark.py experts`` (``MODEL.RIDE.BATCHED_EXPERTS``), and for inference a third way:
the experts' stages vmapped over E with ``torch.func`` (stacked parameters, one batched call
per layer), the alternative the speed issue asked to measure."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ride_dive.engine import setup_cfg
from ride_dive.modeling import build_model
from ride_dive.solver import build_optimizer

from .speed import paired_median_times, precision_note, speed_variants, step_closures

__all__ = ["print_experts_table", "vmapped_expert_features"]


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


def vmapped_expert_features(backbone):
    """``images -> (E, N, D)``: the eval-mode pooled features of a RIDE ``backbone``
    (a ``MultiExpertBackbone``) with its experts' stages run by ``torch.func.vmap`` over the
    stacked expert parameters and buffers, instead of a loop or grouped convolutions."""
    experts = [nn.Sequential(*backbone.expert_stages(e)) for e in range(backbone.num_experts)]
    params, buffers = torch.func.stack_module_state(experts)
    template = copy.deepcopy(experts[0]).to("meta")  # the structure; the weights come stacked

    def one_expert(p, b, shared):
        return torch.func.functional_call(template, (p, b), (shared,))

    run = torch.func.vmap(one_expert, in_dims=(0, 0, None))

    def features(images):
        pooled = run(params, buffers, backbone.forward_trunk(images)).mean((3, 4))
        return F.normalize(pooled, dim=2) if backbone.normalize_features else pooled

    return features


def _vmapped_eval_step(model, images, amp: bool):
    """An eval forward of the RIDE ``model`` (features vmapped, then its heads' mean)."""
    model.eval()
    features = vmapped_expert_features(model.backbone)

    def eval_step():
        with (
            torch.inference_mode(),
            torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp),
        ):
            model._heads(features(images)).float().mean(0)

    return eval_step


def print_experts_table(num_experts: int, batch_size: int, iters: int) -> None:
    """Print images/s of a training step and an eval forward of RIDE ResNet-32 with its
    experts run one after the other against batched, per precision, and an eval forward
    with the experts vmapped (:func:`vmapped_expert_features`)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"\nRIDE ResNet-32, {num_experts} experts, 32x32, batch {batch_size}, "
        f"{torch.get_num_threads()} threads, device {device.type}; images/s of a training "
        f"step (fwd+bwd+SGD) and of an eval forward, median of {iters} alternating "
        f"calls; "
        f"{precision_note(device)}\n"
    )
    print(
        "| precision | train loop | train batched | ratio | eval loop | eval batched | ratio "
        "| eval vmap |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, amp, channels_last in speed_variants(False, device):
        images = torch.randn(batch_size, 3, 32, 32, device=device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, 100, (batch_size,), device=device)
        loop_model = _ride_model(False, channels_last, num_experts)
        loop = step_closures(*loop_model, images, labels, amp)
        batched = step_closures(*_ride_model(True, channels_last, num_experts), images, labels, amp)
        vmapped = _vmapped_eval_step(loop_model[0], images, amp)
        t_loop, t_batched = paired_median_times([loop[0], batched[0]], iters, device)
        cells = [
            f"{batch_size / t_loop:.1f}",
            f"{batch_size / t_batched:.1f}",
            f"{t_loop / t_batched:.2f}x",
        ]
        t_loop, t_batched, t_vmap = paired_median_times(
            [loop[1], batched[1], vmapped], iters, device
        )
        cells += [
            f"{batch_size / t_loop:.1f}",
            f"{batch_size / t_batched:.1f}",
            f"{t_loop / t_batched:.2f}x",
            f"{batch_size / t_vmap:.1f}",
        ]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
