"""Speed measurements behind ``tools/benchmark.py``: bare loops, the trainer, paired timing.

Every function measures one variant; the tool interleaves variants over rounds and prints
ratios measured side by side, so background load on a shared machine hits all of them.
The timing functions take a ``clock`` (seconds, ``time.perf_counter`` by default) so that
what they compute from the clock readings can be checked against a scripted clock.
"""

import gc
import statistics
import time
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ride_dive.engine import DefaultTrainer, HookBase, setup_cfg
from ride_dive.modeling import build_model
from ride_dive.solver import build_optimizer
from ride_dive.utils.modules import compile_for_training

from .precision import (
    COMPILE_SUFFIX,
    FP32_CHANNELS_LAST,
    PRECISIONS,
    compiled_row,
    default_precision,
    precision_note,
    speed_variants,
)

__all__ = [
    "NUM_CLASSES",
    "PRECISIONS",
    "SPEED_MODELS",
    "COMPILE_SUFFIX",
    "FP32_CHANNELS_LAST",
    "WARMUP_STEPS",
    "compiled_row",
    "PeakMemory",
    "bare_loop",
    "default_precision",
    "default_speed_models",
    "paired_median_times",
    "precision_note",
    "speed_cfg",
    "speed_table",
    "speed_variants",
    "step_closures",
    "sync_device",
    "trainer_loop",
]

NUM_CLASSES = 10
# Untimed calls before timing starts: allocator, oneDNN primitive caches, loader start-up.
WARMUP_STEPS = 3
# Seconds, read before and after what is timed: time.perf_counter unless a test scripts one.
Clock = Callable[[], float]


def _ride_opts(backbone: str) -> List[str]:
    """A 4-expert RIDE model on ``backbone`` with cosine heads and the BSCE RIDE loss."""
    return [
        "MODEL.META_ARCHITECTURE", "RIDE",
        "MODEL.BACKBONE.NAME", backbone,
        "MODEL.RIDE.NUM_EXPERTS", "4",
        "MODEL.HEAD.NAME", "CosineHead",
        "MODEL.LOSS.NAME", "RIDELoss",
        "MODEL.LOSS.RIDE.BASE_LOSS", "BalancedSoftmaxLoss",
    ]  # fmt: skip


# The speed suite's models, with the image size each is measured at: single-head ResNet-32
# and 4-expert RIDE ResNet-32 (cosine heads, RIDE loss) as trained by the RIDE configs at
# 32x32, and 4-expert RIDE ResNeXt-50 at 224x224 (the ImageNet-LT / iNat recipe, measured
# where a GPU is available).
SPEED_MODELS = {
    "ResNet-32": {"image_size": 32, "opts": ["MODEL.BACKBONE.NAME", "ResNet32"]},
    "RIDE ResNet-32 4E": {"image_size": 32, "opts": _ride_opts("RIDEResNet32")},
    "RIDE ResNeXt-50 4E": {"image_size": 224, "opts": _ride_opts("RIDEResNeXt50")},
}


def default_speed_models(cuda: bool) -> List[str]:
    """Every model on a GPU; on a CPU the 32x32 ones (ResNeXt-50 at 224 would take hours)."""
    return [m for m, spec in SPEED_MODELS.items() if cuda or spec["image_size"] <= 32]


def speed_cfg(
    out_dir: str,
    batch: int,
    amp: bool,
    channels_last: bool,
    iters: int,
    model: str = "ResNet-32",
    image_size: Optional[int] = None,
    compiled: bool = False,
):
    """A synthetic RGB long-tailed set (the model's image size unless ``image_size``) large
    enough for ``iters`` steps per epoch; ``compiled`` sets MODEL.COMPILE.ENABLED."""
    size = image_size or SPEED_MODELS[model]["image_size"]
    per_class = max(batch * iters // 4, 64)
    return setup_cfg(
        "",
        [
            "MODEL.DEVICE",
            "cpu" if not torch.cuda.is_available() else "cuda",
            "MODEL.LOSS.NAME",
            "BalancedSoftmaxLoss",
        ]
        + SPEED_MODELS[model]["opts"]
        + [
            "MODEL.BACKBONE.IN_CHANNELS",
            "3",
            "MODEL.CHANNELS_LAST",
            str(channels_last),
            "DATASETS.NAME",
            "SyntheticLT",
            "DATASETS.SYNTHETIC.NUM_CLASSES",
            str(NUM_CLASSES),
            "DATASETS.SYNTHETIC.IMAGE_SIZE",
            str(size),
            "DATASETS.MAX_PER_CLASS",
            str(per_class),
            "DATASETS.IMBALANCE_FACTOR",
            "2.0",
            "INPUT.CROP_SIZE",
            str(size),
            "SOLVER.BATCH_SIZE",
            str(batch),
            "SOLVER.MAX_EPOCHS",
            "1000",
            "SOLVER.WARMUP_EPOCHS",
            "0",
            "SOLVER.AMP.ENABLED",
            str(amp),
            "SOLVER.AMP.DTYPE",
            "bfloat16",  # the rows are named by precision: never "auto"'s fallback to fp32
            "MODEL.COMPILE.ENABLED",
            str(compiled),
            "TEST.EVAL_PERIOD",
            "0",
            "LOG_PERIOD",
            "20",
            "OUTPUT_DIR",
            out_dir,
        ],
    )


def bare_loop(
    cfg, iters: int, clock: Clock = time.perf_counter, warmup: Optional[List[float]] = None
) -> tuple:
    """Images/s of forward/backward/step on one preloaded batch, nothing else, and of an
    evaluation forward (inference mode) on the same batch.

    Each rate is ``batch * iters`` over the clock time of ``iters`` calls after
    ``WARMUP_STEPS`` untimed ones: the clock is read twice per rate, training first. With
    MODEL.COMPILE the training step is compiled as the trainer compiles it (the evaluation
    stays eager, as in the trainer); ``warmup``, when given, receives the seconds of the
    training warm-up steps (which include the compilation).
    """
    device = torch.device(cfg.MODEL.DEVICE)
    plain = build_model(cfg, [100] * NUM_CLASSES)
    plain.train()
    model = compile_for_training(plain, cfg)
    optimizer = build_optimizer(cfg, model)
    batch = cfg.SOLVER.BATCH_SIZE
    size = cfg.INPUT.CROP_SIZE
    images = torch.randn(batch, 3, size, size, device=device)
    if cfg.MODEL.CHANNELS_LAST:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    amp = cfg.SOLVER.AMP.ENABLED
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else nullcontext

    def step():
        with ctx():
            loss = sum(model(images, labels).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def evaluate():
        with torch.inference_mode(), ctx():
            plain(images)

    def images_per_second(fn, warm_seconds=None) -> float:
        started = time.perf_counter()  # not the injected clock: it times the rates only
        for _ in range(WARMUP_STEPS):
            fn()
        if warm_seconds is not None:
            warm_seconds.append(time.perf_counter() - started)
        start = clock()
        for _ in range(iters):
            fn()
        sync_device(device)
        return batch * iters / (clock() - start)

    train = images_per_second(step, warmup)
    plain.eval()
    return train, images_per_second(evaluate)


class _StopAfter(HookBase):
    """Records when each step ends and stops the run after ``n`` steps."""

    class Stop(Exception):
        pass

    def __init__(self, n: int, clock: Clock):
        self.n = n
        self.clock = clock
        self.step_ends = []

    def after_step(self):
        self.step_ends.append(self.clock())
        if len(self.step_ends) >= self.n:
            raise self.Stop


def trainer_loop(cfg, iters: int, clock: Clock = time.perf_counter) -> float:
    """Images/s of the full trainer (data loader, augmentation, hooks, writers).

    The trainer runs ``WARMUP_STEPS + iters`` steps; the clock is read at the end of
    each, and the rate is ``batch * iters`` over the time from the last warm-up step's end
    to the last step's end.
    """
    trainer = DefaultTrainer(cfg)
    probe = _StopAfter(WARMUP_STEPS + iters, clock)
    trainer.trainer.register_hooks([probe])
    try:
        trainer.trainer.train(0)
    except _StopAfter.Stop:
        pass
    sync_device(trainer.device)
    # Step ends are timed, so the interval includes loading and augmenting the next batch.
    elapsed = probe.step_ends[-1] - probe.step_ends[WARMUP_STEPS - 1]
    return cfg.SOLVER.BATCH_SIZE * iters / elapsed


def sync_device(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously) before timing."""
    if device.type == "cuda":
        torch.cuda.synchronize()


class PeakMemory:
    """Peak memory while a block runs, in MB.

    CUDA: the allocator's peak (``torch.cuda.max_memory_allocated``). CPU (Linux): the
    process's peak resident set (``VmHWM``), reset on entry through ``/proc/self/clear_refs``,
    so it includes the interpreter and torch (a few hundred MB) besides the variant itself.
    ``mb`` stays None where neither is available.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.mb = None

    def __enter__(self):
        gc.collect()  # earlier variants' models and data must not count
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.mb = int(line.split()[1]) / 1024
        except OSError:
            pass


def step_closures(model, optimizer, images, labels, amp: bool):
    """(train step, eval forward) closures of one model on one preloaded batch."""

    def train_step():
        model.train()
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
            loss = sum(model(images, labels).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_step():
        model.eval()
        with (
            torch.inference_mode(),
            torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp),
        ):
            model(images)

    return train_step, eval_step


def paired_median_times(
    steps: Sequence[Callable[[], None]], iters: int, device, clock: Clock = time.perf_counter
) -> List[float]:
    """Median seconds per call of each step, calling them alternately.

    Alternating (and swapping the order every iteration) exposes every variant to the same
    background load, which matters on shared machines. Each step is called twice to warm
    up, untimed, then ``iters`` times timed: in list order on even iterations, reversed on
    odd ones.
    """
    for step in steps:  # warm-up: allocator, oneDNN primitive caches
        step()
        step()
    times = [[] for _ in steps]
    for i in range(iters):
        order = range(len(steps)) if i % 2 == 0 else reversed(range(len(steps)))
        for j in order:
            start = clock()
            steps[j]()
            sync_device(device)
            times[j].append(clock() - start)
    return [statistics.median(t) for t in times]


Measurements = Dict[Tuple[str, str], List[float]]


def speed_table(
    models: Sequence[str],
    bare: Measurements,
    trainer: Measurements,
    evals: Measurements,
    peak: Measurements,
    variants: Sequence[Tuple[str, bool, bool]] = PRECISIONS,
    warmup: Optional[Measurements] = None,
) -> str:
    """The Markdown table of ``tools/benchmark.py speed``: one row per model and precision.

    Each argument maps ``(model, precision name)`` to one value per round: ``bare`` /
    ``trainer`` / ``evals`` images/s of :func:`bare_loop` (training), :func:`trainer_loop`
    and :func:`bare_loop` (evaluation), ``peak`` the peak memory in MB (may be empty). The
    cells are the medians over rounds; ``vs fp32`` is the bare median over the model's fp32
    bare median, ``trainer / bare`` the trainer median over the bare median; the memory
    cell is the largest peak. ``variants`` are the rows per model (:func:`speed_variants`);
    with ``warmup`` (seconds of the training warm-up steps per round) a last column gives
    its median: the compilation's cost for a compiled row.
    """
    lines = [
        "| model | image | precision | bare train img/s | vs fp32 | trainer img/s | "
        "trainer / bare | eval img/s | peak memory (MB) |" + (" warm-up (s) |" if warmup else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if warmup else ""),
    ]
    for model in models:
        fp32 = statistics.median(bare[model, "fp32"])
        size = SPEED_MODELS[model]["image_size"]
        for name, _, _ in variants:
            b, t = statistics.median(bare[model, name]), statistics.median(trainer[model, name])
            e = statistics.median(evals[model, name])
            m = f"{max(peak[model, name]):.0f}" if peak.get((model, name)) else "–"
            w = f" {statistics.median(warmup[model, name]):.1f} |" if warmup else ""
            lines.append(
                f"| {model} | {size}x{size} | {name} | {b:.0f} | {b / fp32:.2f}x | "
                f"{t:.0f} | {t / b:.2f} | {e:.0f} | {m} |{w}"
            )
    return "\n".join(lines)
