"""Router early exit against the full ensemble: wall-clock images/s on a trained router run's
test split, behind ``tools/benchmark.py router`` (and the end of ``speed``)."""

import json
import statistics
import time

import torch

from ride_dive.checkpoint import Checkpointer
from ride_dive.data import build_datasets, build_test_loader
from ride_dive.engine import setup_cfg
from ride_dive.modeling import build_model
from ride_dive.utils.env import eval_amp_dtype
from ride_dive.utils.logger import setup_logger
from ride_dive.utils.run_dir import RunDir

from .speed import sync_device

__all__ = ["time_router"]


def time_router(run_dir: str, rounds: int) -> None:
    """Early exit against the full ensemble, images/s on ``run_dir``'s test split."""
    setup_logger("", rank=1)
    run = RunDir(run_dir)
    cfg = setup_cfg(run.config, ["MODEL.WEIGHTS", run.final_model])
    with open(run.results) as f:
        report = json.load(f)["router"]
    threshold = report["threshold"]
    device = torch.device(
        cfg.MODEL.DEVICE
        if cfg.MODEL.DEVICE != "auto"
        else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    splits = build_datasets(cfg)
    model = build_model(cfg, splits.class_counts).eval()
    Checkpointer(model, "").load(cfg.MODEL.WEIGHTS, checkpointables=[])
    batches = [
        images.to(device) for images, _ in build_test_loader(cfg, splits.test, device=device)
    ]
    if cfg.MODEL.CHANNELS_LAST:
        batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
    dtype = eval_amp_dtype(cfg)
    used = []

    def run(early_exit: bool):
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            for images in batches:
                if early_exit:
                    used.append(model.early_exit(images, threshold)["experts_used"])
                else:
                    model.forward_all(images)

    times = {False: [], True: []}
    run(False), run(True)  # warm-up
    for i in range(rounds):
        for mode in (False, True) if i % 2 == 0 else (True, False):
            start = time.perf_counter()
            run(mode)
            sync_device(device)
            times[mode].append(time.perf_counter() - start)
    n = sum(len(b) for b in batches)
    full, early = statistics.median(times[False]), statistics.median(times[True])
    experts_used = torch.cat(used).float().mean().item()
    print(
        f"\n{run_dir}: {n} test images, batch {cfg.TEST.BATCH_SIZE}, "
        f"{'bf16' if dtype is not None else 'fp32'}, {torch.get_num_threads()} threads, "
        f"device {device.type}; median of {rounds} alternating rounds\n"
    )
    print("| inference | images/s | experts/image | GMACs/image |")
    print("|---|---|---|---|")
    num_experts = len(report["gmacs_per_expert_count"])
    print(
        f"| full ensemble ({num_experts} experts) | {n / full:.0f} | {num_experts:.2f} | "
        f"{report['full_ensemble_gmacs']:.4f} |"
    )
    print(
        f"| router, threshold {threshold:g} | {n / early:.0f} | {experts_used:.2f} | "
        f"{report['gmacs']:.4f} |"
    )
    print(
        f"\nwall-time speed-up {full / early:.2f}x; MAC reduction "
        f"{report['full_ensemble_gmacs'] / report['gmacs']:.2f}x"
    )
