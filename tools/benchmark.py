#!/usr/bin/env python
r"""Benchmarks: the accuracy suite, and training speed measured side by side in one run.

    python tools/benchmark.py accuracy --suite fashion-mnist-lt [--seeds 0 1 2] \
        [--imbalance 100 10] [--output-root DIR] [--report-only] [KEY VALUE ...]
    python tools/benchmark.py speed [--iters 30] [--rounds 3] [--batch-size 128] [--models ...]
    python tools/benchmark.py router RUN_DIR [--rounds 5]
    python tools/benchmark.py experts [--experts 4] [--iters 15] [--batch-size 128]
    python tools/benchmark.py distill [--iters 15] [--batch-size 128]
    python tools/benchmark.py decode [--images 200] [--rounds 3] [--target 3000]
    python tools/benchmark.py process [--config-file F] [--rounds 3] [--variant "LABEL=K V ..."]

``accuracy`` runs every method of a suite (``configs/<dataset>/benchmark_suite.yaml``: CE,
BSCE, LDAM-DRW, DiVE, RIDE 3E/4E, the 6E BSCE teacher, RIDE-DiVE with and without router,
cRT, LWS, tau-norm, NCM) for each imbalance factor and seed; finished runs are skipped and
interrupted ones resumed. It then writes the suite's section of ``BENCHMARKS.md``: mean ±
std over seeds of top-1 / many / medium / few, GMACs per image and training time, beside the
published numbers (docs/METHODS.md 9). Suites: fashion-mnist-lt, cifar100-lt, cifar10-lt,
imagenet-lt, inat18 (the last four need their data, and GPUs to finish in reasonable time).

``speed`` prints, for ResNet-32 and 4-expert RIDE ResNet-32 at 32x32 (and, on a GPU, 4-expert
RIDE ResNeXt-50 at 224x224) in fp32, bf16 autocast and bf16 + channels_last: training
images/s of a bare forward/backward/step loop on preloaded tensors and of the full trainer
(in-memory loader with batched augmentation, hooks, logging) as a ratio to it, evaluation
images/s and peak memory; then the ``distill`` table and, when the Fashion-MNIST-LT
RIDE-DiVE router run exists (``--router-run``), the ``router`` table. Variants are
interleaved over several rounds and the median is reported, so a background hiccup does not
favour one of them. The measuring code is in ``benchmarks/speed.py``, the accuracy suite in
``benchmarks/accuracy_suite.py`` (the repository's ``benchmarks/`` folder, not installed).

``decode`` measures the input side of image-file datasets (ImageNet-LT, iNat, Places-LT):
decode + RandomResizedCrop(224) + flip + normalize images/s in one thread, i.e. per
DataLoader worker, for the PIL pipeline that ``ListFileDataset`` runs and for
``torchvision.io.decode_jpeg`` + ``transforms.v2`` (``benchmarks/decode.py``).

``process`` times whole ``tools/train_net.py`` processes of one config (default: 4-expert
RIDE ResNet-32 on Fashion-MNIST-LT, three epochs and the final evaluation) with different
overrides, alternating over rounds: by default fp32 eager against the shipped defaults, each
with and without ``CPU_KEEP_FREED_MEMORY`` (``benchmarks/process.py``).

``experts`` times a RIDE ResNet-32 training step (100 classes, cosine heads, RIDE loss) and
an eval forward at 32x32 (images/s), with the experts run in a Python loop against the
batched (grouped-convolution) execution that ``MODEL.RIDE.BATCHED_EXPERTS`` selects.

``router RUN_DIR`` times, on the test split of a trained router run (e.g. the router stage of
the Fashion-MNIST-LT RIDE-DiVE pipeline), router-driven early exit at the run's chosen
threshold against the full ensemble: wall-clock images/s, experts per image and GMACs,
alternating the two over rounds. Early exit saves MACs; whether it saves wall time depends
on how well the smaller per-expert batches use the machine.

``distill`` times a distillation training step (student + frozen teacher forward + DiVE loss)
against the same student's plain step (Balanced Softmax), side by side: single-head
ResNet-32 with a ResNet-32 teacher (DiVE), and 4-expert RIDE ResNet-32 with a 6-expert
teacher (RIDE-DiVE), at 32x32, 10 classes.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.accuracy_suite import (  # noqa: E402
    SUITES,
    paired_table,
    replace_section,
    run_suite,
    seed_warning,
    suite_table,
)
from benchmarks.speed import (  # noqa: E402
    COMPILE_SUFFIX,
    SPEED_MODELS,
    PeakMemory,
    bare_loop,
    default_speed_models,
    precision_note,
    speed_cfg,
    speed_table,
    speed_variants,
    trainer_loop,
)
from ride_dive.utils.cpu_allocator import keep_freed_cpu_memory  # noqa: E402
from ride_dive.utils.logger import setup_logger  # noqa: E402
from ride_dive.utils.run_dir import RunDir  # noqa: E402


def speed(args) -> None:
    setup_logger("", rank=1)  # keep the trainer quiet (warnings only)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.models = args.models or default_speed_models(device.type == "cuda")
    variants = speed_variants(args.compile, device)
    keys = [(m, p) for m in args.models for p, _, _ in variants]
    bare = {k: [] for k in keys}
    warm = {k: [] for k in keys}
    evals = {k: [] for k in keys}
    full = {k: [] for k in keys}
    peak = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for model in args.models:
                for name, amp, cl in variants:
                    cfg = speed_cfg(
                        os.path.join(tmp, name.replace(" ", "")),
                        args.batch_size,
                        amp,
                        cl,
                        args.iters + 3,
                        model,
                        compiled=name.endswith(COMPILE_SUFFIX),
                    )
                    b, e = bare_loop(cfg, args.iters, warmup=warm[model, name])
                    bare[model, name].append(b)
                    evals[model, name].append(e)
                    with PeakMemory(device) as memory:
                        full[model, name].append(trainer_loop(cfg, args.iters))
                    if memory.mb is not None:
                        peak[model, name].append(memory.mb)
    memory_kind = "CUDA allocator peak" if device.type == "cuda" else "process peak RSS"
    print(
        f"\nbatch {args.batch_size}, {torch.get_num_threads()} threads, device "
        f"{device.type}; median of {args.rounds} rounds x {args.iters} iterations; memory: "
        f"{memory_kind} during the trainer run; {precision_note(device)}\n"
    )
    print(speed_table(args.models, bare, full, evals, peak, variants, warm), flush=True)
    if args.with_distill:
        distill(args)
    if args.router_run and os.path.isfile(RunDir(args.router_run).results):
        from benchmarks.router import time_router

        time_router(args.router_run, args.rounds)


def experts(args) -> None:
    """RIDE's experts in a Python loop against batched (benchmarks/experts.py)."""
    from benchmarks.experts import print_experts_table

    print_experts_table(args.experts, args.batch_size, args.iters)


def distill(args) -> None:
    """The distillation step against a plain step (benchmarks/distill.py)."""
    from benchmarks.distill import print_distill_table

    print_distill_table(args.batch_size, args.iters)


def decode(args) -> None:
    """Decode + augmentation images/s per worker for image-file datasets."""
    from benchmarks.decode import decode_table

    print(decode_table(args.images, args.rounds, args.target))


def router(args) -> None:
    """Early exit against the full ensemble on a trained router run (benchmarks/router.py)."""
    from benchmarks.router import time_router

    time_router(args.run_dir, args.rounds)


def accuracy(args) -> None:
    suite = SUITES[args.suite]
    root = args.output_root or os.path.join("output", "benchmarks", args.suite)
    factors = args.imbalance or list(suite.imbalance_factors)
    unknown = [f for f in factors if f not in suite.imbalance_factors]
    if unknown:
        sys.exit(
            f"ERROR: --imbalance {unknown}: the {args.suite} suite has "
            f"{list(suite.imbalance_factors)}"
        )
    seeds = args.seeds or list(suite.default_seeds)
    if not args.report_only:
        setup_logger(root)
        run_suite(suite, root, seeds, factors, args.opts)
    command = f"python tools/benchmark.py accuracy --suite {args.suite}"
    if args.output_root:
        command += f" --output-root {args.output_root}"
    parts = [
        f"## Accuracy: {suite.title}",
        "",
        f"`{command}` (runs in `{root}`; re-running skips finished runs; "
        f"`--report-only` rebuilds these tables from them). Test split, mean ± std "
        "over the seeds; training time is wall time on the machine that ran it. Below each "
        "table, the paired differences A − B over the seeds both methods finished: mean "
        "[95 % t-interval]; (n.s.) = not significant, the interval holds 0.",
        "",
    ]
    for imbalance in factors:
        title = suite.title + (f", IF {imbalance:g}" if imbalance is not None else "")
        table = suite_table(suite, root, imbalance)
        found = max((int(row.split("|")[2]) for row in table.splitlines()[2:]), default=0)
        parts += [f"### {title}", "", table, ""]
        warning = seed_warning(suite, found)
        parts += [warning, ""] if warning else []
        parts += ["Paired differences:", "", paired_table(suite, root, imbalance), ""]
    section = "\n".join(parts)
    print(section)
    if args.benchmarks_md:
        text = ""
        if os.path.isfile(args.benchmarks_md):
            with open(args.benchmarks_md, encoding="utf-8") as f:
                text = f.read()
        with open(args.benchmarks_md, "w", encoding="utf-8") as f:
            f.write(replace_section(text or "# Benchmarks\n", f"accuracy:{args.suite}", section))
        print(f"Updated {args.benchmarks_md}")


def process(args) -> None:
    """Whole training processes with different overrides (benchmarks/process.py)."""
    from benchmarks.process import DEFAULT_VARIANTS, process_table, time_processes

    variants = args.variant or list(DEFAULT_VARIANTS)
    print(f"{args.config_file} {' '.join(args.opts)}; {args.rounds} rounds", flush=True)
    seconds = time_processes(args.config_file, args.opts, variants, args.rounds)
    print()
    print(process_table(seconds))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("speed", help="training/eval throughput and memory, side by side")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        choices=list(SPEED_MODELS),
        help="default: all on a GPU, the 32x32 ones on a CPU",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="add a row with MODEL.COMPILE (torch.compile, Inductor) at the default precision",
    )
    p.add_argument(
        "--no-distill",
        dest="with_distill",
        action="store_false",
        help="skip the DiVE-step-against-plain-step table",
    )
    p.add_argument(
        "--router-run",
        default="output/fmnist_lt/ride_dive_pipeline_s0/router",
        help="a trained router run to time early exit on ('' = skip)",
    )
    dec = sub.add_parser("decode", help="image-file input: decode + augmentation img/s per worker")
    dec.add_argument("--images", type=int, default=200)
    dec.add_argument("--rounds", type=int, default=3)
    dec.add_argument(
        "--target", type=int, default=3000, help="a consumer's img/s (the workers it needs)"
    )
    e = sub.add_parser("experts", help="RIDE experts: Python loop vs batched, side by side")
    e.add_argument("--experts", type=int, default=4)
    e.add_argument("--iters", type=int, default=15)
    e.add_argument("--batch-size", type=int, default=128)
    a = sub.add_parser("accuracy", help="every method of a suite, several seeds, one table")
    a.add_argument("--suite", required=True, choices=sorted(SUITES))
    a.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="default: the suite's (five for fashion-mnist-lt, three for the others)",
    )
    a.add_argument(
        "--imbalance",
        type=float,
        nargs="+",
        default=None,
        help="imbalance factors to run (default: the suite's)",
    )
    a.add_argument("--output-root", default="", help="default output/benchmarks/<suite>")
    a.add_argument(
        "--benchmarks-md",
        default="BENCHMARKS.md",
        help="file whose suite section is rewritten ('' = print only)",
    )
    a.add_argument("--report-only", action="store_true", help="tables from finished runs")
    a.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="KEY VALUE overrides for every run (e.g. MODEL.DEVICE cpu)",
    )
    r = sub.add_parser("router", help="early exit vs full ensemble, wall time on a test set")
    r.add_argument(
        "run_dir", help="a trained router run (config.yaml, model_final.pth, results.json)"
    )
    r.add_argument("--rounds", type=int, default=5)
    d = sub.add_parser("distill", help="distillation step vs plain step, side by side")
    d.add_argument("--iters", type=int, default=15)
    d.add_argument("--batch-size", type=int, default=128)
    pr = sub.add_parser("process", help="whole train_net processes, variants side by side")
    pr.add_argument("--config-file", default="configs/FashionMNIST-LT/ride_4e_r32.yaml")
    pr.add_argument("--rounds", type=int, default=3)
    pr.add_argument(
        "--variant",
        action="append",
        default=[],
        help='"LABEL=KEY VALUE ..." (repeatable; the first is the reference); default: fp32 '
        "eager and the shipped defaults, each with and without CPU_KEEP_FREED_MEMORY",
    )
    pr.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="KEY VALUE overrides for every variant (default: three epochs, no warm-up)",
    )
    args = parser.parse_args(argv)
    if args.command in (None, "speed", "distill", "experts", "router"):
        # In-process timings run as a training process does: with CPU_KEEP_FREED_MEMORY's
        # default (``process`` compares it on and off in whole processes).
        keep_freed_cpu_memory()
    if args.command == "process" and not args.opts:
        args.opts = ["SOLVER.MAX_EPOCHS", "3", "SOLVER.WARMUP_EPOCHS", "0"]
    if args.command == "accuracy":
        accuracy(args)
    elif args.command == "router":
        router(args)
    elif args.command == "distill":
        setup_logger("", rank=1)
        distill(args)
    elif args.command == "experts":
        setup_logger("", rank=1)
        experts(args)
    elif args.command == "decode":
        decode(args)
    elif args.command == "process":
        process(args)
    elif args.command in (None, "speed"):
        if args.command is None:
            args = parser.parse_args(["speed"] + (argv or sys.argv[1:]))
        speed(args)


if __name__ == "__main__":
    main()
