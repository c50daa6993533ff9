#!/usr/bin/env python
r"""What bf16 evaluation (``TEST.AMP.ENABLED True``) gains and costs on a trained run.

    python benchmarks/eval_precision.py RUN_DIR [--rounds 5] [--dtype bfloat16] [KEY VALUE ...]

RUN_DIR is a finished run's output folder (its ``config.yaml`` and ``model_final.pth``), e.g.
``python tools/train_net.py --config-file configs/FashionMNIST-LT/bsce_r32.yaml SEED 0
OUTPUT_DIR output/fmnist_lt/bsce_r32_s0``. On its test split the script computes the logits
once in fp32 (the default evaluation) and once under ``--dtype`` autocast, both through the
evaluator's own ``predict_on_dataset``, and prints the largest and mean absolute logit
difference, top-1 in each precision and how many predictions change. It then times an
inference-mode forward over the preloaded test batches in each precision (batch
``TEST.BATCH_SIZE``, channels_last as the run's config says), alternating the two over
``--rounds`` rounds, and prints the median images/s and their ratio. ``KEY VALUE`` pairs
override the run's config (e.g. ``TEST.BATCH_SIZE 256``).
"""

import argparse
import os
import statistics
import sys
import time
from typing import Dict, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from ride_dive.checkpoint import load_trained_model  # noqa: E402
from ride_dive.data import build_datasets, build_test_loader  # noqa: E402
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.evaluation.evaluator import predict_on_dataset  # noqa: E402
from ride_dive.utils.env import eval_amp_dtype, resolve_device  # noqa: E402
from ride_dive.utils.run_dir import RunDir  # noqa: E402

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def compare_logits(fp32: torch.Tensor, low: torch.Tensor, labels: torch.Tensor) -> Dict:
    """Logit and top-1 differences between an fp32 and a reduced-precision evaluation."""
    diff = (low - fp32).abs()
    pred32, pred_low = fp32.argmax(1), low.argmax(1)
    return {
        "images": int(labels.numel()),
        "max_abs_logit_diff": diff.max().item(),
        "mean_abs_logit_diff": diff.mean().item(),
        "top1_fp32": 100.0 * (pred32 == labels).float().mean().item(),
        "top1_low": 100.0 * (pred_low == labels).float().mean().item(),
        "predictions_changed": int((pred32 != pred_low).sum()),
    }


def images_per_second(
    model, batches, device: torch.device, dtype: Optional[torch.dtype], rounds: int
) -> Dict[Optional[torch.dtype], float]:
    """Median images/s of an inference-mode forward over ``batches``, fp32 (None) and
    ``dtype`` autocast, alternating the two over ``rounds`` after one warm-up pass each."""

    def run(d):
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=d or torch.bfloat16, enabled=d is not None),
        ):
            for images in batches:
                model(images)
        if device.type == "cuda":
            torch.cuda.synchronize()

    variants = (None, dtype)
    for d in variants:
        run(d)
    times = {d: [] for d in variants}
    for i in range(rounds):
        for d in variants if i % 2 == 0 else variants[::-1]:
            start = time.perf_counter()
            run(d)
            times[d].append(time.perf_counter() - start)
    n = sum(len(b) for b in batches)
    return {d: n / statistics.median(t) for d, t in times.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    p.add_argument("opts", nargs="*", help="KEY VALUE config overrides")
    args = p.parse_args(argv)
    run = RunDir(args.run_dir)
    cfg = setup_cfg(run.config, list(args.opts))
    device = resolve_device(cfg.MODEL.DEVICE)
    splits = build_datasets(cfg)
    model = load_trained_model(cfg, splits.class_counts, device, weights=run.final_model)
    loader = build_test_loader(cfg, splits.test, device=device)
    fp32_cfg = setup_cfg(run.config, list(args.opts) + ["TEST.AMP.ENABLED", "False"])
    low_cfg = setup_cfg(
        run.config, list(args.opts) + ["TEST.AMP.ENABLED", "True", "TEST.AMP.DTYPE", args.dtype]
    )
    logits32, labels = predict_on_dataset(model, loader, device, eval_amp_dtype(fp32_cfg))
    logits_low, _ = predict_on_dataset(model, loader, device, eval_amp_dtype(low_cfg))
    stats = compare_logits(logits32, logits_low, labels)

    batches = [images.to(device) for images, _ in loader]
    if cfg.MODEL.CHANNELS_LAST:
        batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
    speed = images_per_second(model, batches, device, DTYPES[args.dtype], args.rounds)
    fast, slow = speed[DTYPES[args.dtype]], speed[None]
    print(
        f"\n{args.run_dir}: {stats['images']} test images, batch {cfg.TEST.BATCH_SIZE}, "
        f"device {device.type}, {torch.get_num_threads()} threads; median of {args.rounds} "
        "alternating rounds\n"
    )
    print("| evaluation | images/s | top-1 | max abs logit diff | mean abs logit diff |")
    print("|---|---|---|---|---|")
    print(f"| fp32 (default) | {slow:.0f} | {stats['top1_fp32']:.2f} | - | - |")
    print(
        f"| {args.dtype} autocast | {fast:.0f} | {stats['top1_low']:.2f} | "
        f"{stats['max_abs_logit_diff']:.2e} | {stats['mean_abs_logit_diff']:.2e} |"
    )
    print(
        f"\n{args.dtype} is {fast / slow:.2f}x the fp32 speed; "
        f"{stats['predictions_changed']} of {stats['images']} predictions change"
    )


if __name__ == "__main__":
    main()
