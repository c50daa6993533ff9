#!/usr/bin/env python
r"""Benchmarks: the accuracy suite, and training speed measured side by side in one run.

    python tools/benchmark.py accuracy --suite fashion-mnist-lt [--seeds 0 1 2] \
        [--imbalance 100 10] [--output-root DIR] [--report-only] [KEY VALUE ...]
    python tools/benchmark.py speed [--iters 30] [--rounds 3] [--batch-size 128] [--models ...]
    python tools/benchmark.py router RUN_DIR [--rounds 5]
    python tools/benchmark.py experts [--experts 4] [--iters 15] [--batch-size 128]
    python tools/benchmark.py distill [--iters 15] [--batch-size 128]
    python tools/benchmark.py decode [--images 200] [--rounds 3] [--target 3000]

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
import math
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.accuracy_suite import (  # noqa: E402
    SUITES,
    replace_section,
    run_suite,
    suite_table,
)
from benchmarks.speed import (  # noqa: E402
    COMPILED,
    NUM_CLASSES,
    PRECISIONS,
    SPEED_MODELS,
    PeakMemory,
    bare_loop,
    default_speed_models,
    paired_median_times,
    speed_cfg,
    speed_table,
    speed_variants,
    step_closures,
    sync_device,
    trainer_loop,
)
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.modeling import build_model  # noqa: E402
from ride_dive.modeling.teacher import FrozenTeacher  # noqa: E402
from ride_dive.solver import build_optimizer  # noqa: E402
from ride_dive.utils.logger import setup_logger  # noqa: E402
from ride_dive.utils.run_dir import RunDir  # noqa: E402


def speed(args) -> None:
    setup_logger("", rank=1)  # keep the trainer quiet (warnings only)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.models = args.models or default_speed_models(device.type == "cuda")
    variants = speed_variants(args.compile)
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
                        compiled=name == COMPILED[0],
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
        f"{memory_kind} during the trainer run\n"
    )
    print(speed_table(args.models, bare, full, evals, peak, variants, warm), flush=True)
    if args.with_distill:
        distill(args)
    if args.router_run and os.path.isfile(RunDir(args.router_run).results):
        time_router(args.router_run, args.rounds)


def _ride_model(batched: bool, channels_last: bool, args):
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
            str(args.experts),
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


def experts(args) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"\nRIDE ResNet-32, {args.experts} experts, 32x32, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, device {device.type}; images/s of a training "
        f"step (fwd+bwd+SGD) and of an eval forward, median of {args.iters} alternating "
        f"calls\n"
    )
    print("| precision | train loop | train batched | ratio | eval loop | eval batched | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, amp, channels_last in PRECISIONS:
        images = torch.randn(args.batch_size, 3, 32, 32, device=device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, 100, (args.batch_size,), device=device)
        loop = step_closures(*_ride_model(False, channels_last, args), images, labels, amp)
        batched = step_closures(*_ride_model(True, channels_last, args), images, labels, amp)
        cells = []
        for k in (0, 1):  # train, eval
            t_loop, t_batched = paired_median_times([loop[k], batched[k]], args.iters, device)
            cells += [
                f"{args.batch_size / t_loop:.1f}",
                f"{args.batch_size / t_batched:.1f}",
                f"{t_loop / t_batched:.2f}x",
            ]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


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


def distill(args) -> None:
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
        f"\nDistillation step vs plain step, 32x32, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, device {device.type}; training images/s, "
        f"median of {args.iters} alternating calls\n"
    )
    print("| setup | precision | plain step | distillation step | cost ratio |")
    print("|---|---|---|---|---|")
    for setup, plain_opts, student_opts, teacher_opts in setups:
        for name, amp, channels_last in [
            ("fp32", False, False),
            ("bf16 + channels_last", True, True),
        ]:
            images = torch.randn(args.batch_size, 3, 32, 32, device=device)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = torch.randint(0, NUM_CLASSES, (args.batch_size,), device=device)
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
            t_plain, *t_distill = paired_median_times([plain, *variants], args.iters, device)
            for label, t in zip(("", ", teacher BN not folded"), t_distill):
                print(
                    f"| {setup} | {name}{label} | {args.batch_size / t_plain:.1f} | "
                    f"{args.batch_size / t:.1f} | {t / t_plain:.2f}x |",
                    flush=True,
                )


def decode(args) -> None:
    """Decode + augmentation images/s per worker for image-file datasets."""
    from benchmarks.decode import PIPELINES, images_per_second, write_jpegs

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one DataLoader worker
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_jpegs(tmp, args.images)
            mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
            rates = {name: [] for name in PIPELINES}
            for _ in range(args.rounds):  # interleaved: background load hits both
                for name, build in PIPELINES.items():
                    torch.manual_seed(0)
                    rates[name].append(images_per_second(build(224, mean, std), paths))
    finally:
        torch.set_num_threads(threads)
    print(
        f"\n{args.images} JPEGs of 500x375 (quality 90), RandomResizedCrop(224) + flip + "
        f"normalize, one thread; median of {args.rounds} rounds\n"
    )
    print(f"| pipeline | images/s per worker | workers for {args.target} img/s |")
    print("|---|---|---|")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:.0f} | {math.ceil(args.target / rate)} |")


def router(args) -> None:
    time_router(args.run_dir, args.rounds)


def time_router(run_dir: str, rounds: int) -> None:
    """Early exit against the full ensemble, images/s on ``run_dir``'s test split."""
    import json

    from ride_dive.checkpoint import Checkpointer
    from ride_dive.data import build_datasets, build_test_loader
    from ride_dive.utils.env import eval_amp_dtype

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
    if not args.report_only:
        setup_logger(root)
        run_suite(suite, root, args.seeds, factors, args.opts)
    command = f"python tools/benchmark.py accuracy --suite {args.suite}"
    if args.output_root:
        command += f" --output-root {args.output_root}"
    parts = [
        f"## Accuracy: {suite.title}",
        "",
        f"`{command}` (runs in `{root}`; re-running skips finished runs; "
        f"`--report-only` rebuilds these tables from them). Test split, mean ± std "
        "over the seeds; training time is wall time on the machine that ran it.",
        "",
    ]
    for imbalance in factors:
        title = suite.title + (f", IF {imbalance:g}" if imbalance is not None else "")
        parts += [f"### {title}", "", suite_table(suite, root, imbalance), ""]
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
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
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
    args = parser.parse_args(argv)
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
    elif args.command in (None, "speed"):
        if args.command is None:
            args = parser.parse_args(["speed"] + (argv or sys.argv[1:]))
        speed(args)


if __name__ == "__main__":
    main()
