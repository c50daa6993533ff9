"""Recording metrics (``EventStorage``) separately from emitting them (writers).

The trainer and hooks only ``put_scalar`` into the storage; writers (console with ETA,
``metrics.json``, TensorBoard) read it periodically, on the main process only. The file
writers create their files on their first write, so a run that stops before training (a
refused ``--resume``, an evaluation) leaves no new ``metrics.json`` or event file.
"""

import datetime
import json
import logging
import math
import os
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from .run_dir import RunDir

logger = logging.getLogger("ride_dive")


class EventStorage:
    """Scalars recorded during training, keyed by name, with a short smoothing window."""

    def __init__(self, start_iter: int = 0, window: int = 20):
        self.start_iter = start_iter
        self.iter = start_iter
        self.epoch = 0
        self._window = window
        self._history: Dict[str, deque] = defaultdict(lambda: deque(maxlen=self._window))
        self._latest: Dict[str, tuple] = {}

    def put_scalar(self, name: str, value: float, smoothing: bool = True) -> None:
        """Record ``value`` for ``name`` at the current iteration."""
        value = float(value)
        self._history[name].append(value)
        self._latest[name] = (value, self.iter, smoothing)

    def put_scalars(self, smoothing: bool = True, **values: float) -> None:
        for name, value in values.items():
            self.put_scalar(name, value, smoothing)

    def median(self, name: str) -> float:
        values = sorted(self._history[name])
        return values[len(values) // 2] if values else float("nan")

    def latest(self) -> Dict[str, tuple]:
        """``{name: (value, iteration)}`` of the most recent value of every scalar."""
        return {k: (v, it) for k, (v, it, _) in self._latest.items()}

    def latest_smoothed(self) -> Dict[str, tuple]:
        """Like ``latest`` but the window median for scalars recorded with smoothing."""
        return {
            k: (self.median(k) if smooth else v, it) for k, (v, it, smooth) in self._latest.items()
        }


class JSONWriter:
    """Appends one JSON line of the latest (smoothed) scalars to ``metrics.json``.

    The file is opened (created) on the first ``write``, not before.
    """

    def __init__(self, path: str):
        self._path = path
        self._file = None
        self._last_written = -1

    def write(self, storage: EventStorage) -> None:
        if self._file is None:
            self._file = open(self._path, "a")
        by_iter: Dict[int, Dict[str, float]] = defaultdict(dict)
        for name, (value, it) in storage.latest_smoothed().items():
            if it > self._last_written:
                by_iter[it][name] = value
        for it in sorted(by_iter):
            self._file.write(json.dumps({"iteration": it, "epoch": storage.epoch, **by_iter[it]}))
            self._file.write("\n")
        if by_iter:
            self._last_written = max(by_iter)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorboardWriter:
    """Writes the latest scalars to TensorBoard event files in ``log_dir``.

    The event file (and ``log_dir``) is created on the first ``write``, not before.
    """

    def __init__(self, log_dir: str):
        from torch.utils.tensorboard import SummaryWriter  # fails here if not installed

        self._make_writer = lambda: SummaryWriter(log_dir)
        self._writer = None
        self._last_written = -1

    def write(self, storage: EventStorage) -> None:
        if self._writer is None:
            self._writer = self._make_writer()
        newest = self._last_written
        for name, (value, it) in storage.latest_smoothed().items():
            if it > self._last_written:
                self._writer.add_scalar(name, value, it)
                newest = max(newest, it)
        self._last_written = newest

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# --- ETA ----------------------------------------------------------------------------------

_MAX_ETA_SECONDS = 999 * 86400


def format_eta(seconds: float) -> str:
    """``H:MM:SS`` (``N days, H:MM:SS`` past a day), ``> 999 days`` beyond that (or for an
    infinite value) and ``unknown`` for NaN: never raises, whatever the run's length."""
    if math.isnan(seconds):
        return "unknown"
    if seconds > _MAX_ETA_SECONDS:
        return "> 999 days"
    return str(datetime.timedelta(seconds=int(max(seconds, 0.0))))


def eta_seconds(per_iter: float, iters: int) -> float:
    """``per_iter * iters``, infinite where an absurd iteration count overflows a float."""
    try:
        return per_iter * max(iters, 0)
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class PipelineProgress:
    """What a multi-stage pipeline tells the console writer while one of its stages trains.

    Args:
        stage: the running stage, counted from 1.
        num_stages: stages in the pipeline.
        name: the running stage's name.
        later_iters: training iterations of the later stages (an estimate from their
            configs: epochs x iterations per epoch).
    """

    stage: int
    num_stages: int
    name: str
    later_iters: int


_PIPELINE: Optional[PipelineProgress] = None


def set_pipeline_progress(progress: Optional[PipelineProgress]) -> None:
    """Set (or clear, with None) the pipeline stage the console writer reports."""
    global _PIPELINE
    _PIPELINE = progress


def get_pipeline_progress() -> Optional[PipelineProgress]:
    return _PIPELINE


class IterationRate:
    """Seconds per iteration, measured between the writes, without the first iterations.

    The first iterations of a session are slow (warm-up, data-loader workers starting,
    cuDNN autotuning), so measuring starts at the first observation at least
    ``warmup_iters`` iterations into the session; the rate is then the mean over everything
    since (training steps, data loading, evaluation and checkpointing alike), and it exists
    once ``min_iters`` iterations have been measured.
    """

    def __init__(self, warmup_iters: int = 10, min_iters: int = 5):
        self.warmup_iters = warmup_iters
        self.min_iters = min_iters
        self._anchor: Optional[Tuple[float, int]] = None
        self._last: Optional[Tuple[float, int]] = None

    def observe(self, now: float, done_iters: int, session_start: int) -> None:
        """``done_iters`` iterations of the run were done at time ``now``."""
        if self._anchor is None:
            if done_iters - session_start >= self.warmup_iters:
                self._anchor = (now, done_iters)
            return
        self._last = (now, done_iters)

    @property
    def seconds_per_iter(self) -> Optional[float]:
        """The measured rate, or None before there is enough to measure."""
        if self._anchor is None or self._last is None:
            return None
        iters = self._last[1] - self._anchor[1]
        if iters < self.min_iters:
            return None
        return max(self._last[0] - self._anchor[0], 0.0) / iters


# --- Console ------------------------------------------------------------------------------

_EXPERT_TERM = re.compile(r"^(loss\w*?)_e(\d+)$")


def format_rough_duration(seconds: float) -> str:
    """A duration to about two digits: ``N s`` up to 90 seconds, ``N min`` up to 90
    minutes, then ``N.N h`` up to two days, then ``N.N days``; ``> 999 days`` beyond. Never
    raises."""
    if math.isnan(seconds):
        return "unknown"
    if seconds > _MAX_ETA_SECONDS:
        return "> 999 days"
    if seconds < 90:
        return f"{round(max(seconds, 0.0))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def console_losses(
    latest: Dict[str, tuple],
) -> Tuple[Optional[float], List[Tuple[str, float]], Dict[str, int]]:
    """``(total, [(kind, value)], {averaged term: number of experts})`` for a console line.

    ``total`` is the ``total_loss`` scalar (the trainer's sum of the terms), else a ``loss``
    scalar, else the sum of every ``loss*`` term (None without any). The kinds are the terms
    without their ``loss_`` prefix, except that the per-expert terms of one kind
    (``loss_base_e0`` ... ``loss_base_e5``) make one kind (``base``) whose value is their
    mean over the experts.
    """
    terms = {k: v for k, (v, _) in latest.items() if k.startswith("loss") and k != "loss"}
    if "total_loss" in latest:
        total = latest["total_loss"][0]
    elif "loss" in latest:
        total = latest["loss"][0]
    else:
        total = sum(terms.values()) if terms else None
    groups: Dict[str, List[float]] = defaultdict(list)
    for name, value in terms.items():
        match = _EXPERT_TERM.match(name)
        kind = match.group(1) if match else None
        if kind is None or kind == "loss" or kind in terms:  # no name clash with a term
            groups[name].append(value)
        else:
            groups[kind].append(value)
    averaged = {k: len(v) for k, v in groups.items() if k not in terms}
    kinds = [(_short(k), sum(v) / len(v)) for k, v in sorted(groups.items())]
    return total, kinds, averaged


def _short(term: str) -> str:
    return term[len("loss_") :] if term.startswith("loss_") else term


class ConsoleWriter:
    """Logs the ETA, progress, losses, LR and speed, one line of about 110 characters.

    The losses are the total and one value per kind of term, ``loss: 7.24 (base 1.25, div
    -0.0432)``; a kind of per-expert terms is their mean over the experts (``base`` is the
    mean of ``loss_base_e0`` ... ``loss_base_e5``; a note says so once). A loss of a single
    term shows the total only. ``metrics.json`` and TensorBoard keep every term.

    The ETA is ``eta: ...`` until the speed is measured (``IterationRate``), then the time
    left in this run. Inside a pipeline with later training stages it adds ``(all ~1.2 h)``,
    an estimate of the time until the last of them has trained: this run's iterations left
    plus theirs (``PipelineProgress``), at this run's speed; ``~`` because a later stage may
    run at another speed.

    Args:
        max_iter: iterations of the run.
        clock: seconds now (``time.perf_counter``; tests pass a fake one).
        rate: how the speed is measured (by default ``IterationRate()``).
    """

    def __init__(
        self,
        max_iter: int,
        clock: Optional[Callable[[], float]] = None,
        rate: Optional[IterationRate] = None,
    ):
        self._max_iter = max_iter
        self._clock = clock or time.perf_counter
        self._rate = rate or IterationRate()
        self._noted = False

    def _eta(self, storage: EventStorage) -> str:
        done = storage.iter + 1
        self._rate.observe(self._clock(), done, storage.start_iter)
        per_iter = self._rate.seconds_per_iter
        if per_iter is None:
            return "eta: ..."
        left = max(self._max_iter - done, 0)
        eta = f"eta: {format_eta(eta_seconds(per_iter, left))}"
        progress = get_pipeline_progress()
        if progress is not None and progress.later_iters > 0:
            in_all = eta_seconds(per_iter, left + progress.later_iters)
            eta += f" (all ~{format_rough_duration(in_all)})"
        return eta

    def _note(self, averaged: Dict[str, int]) -> None:
        if self._noted or not averaged:
            return
        self._noted = True
        kinds = ", ".join(f"{_short(k)} = mean of the {n} {k}_e*" for k, n in averaged.items())
        logger.info(
            f"Console losses: loss = the total; {kinds} (over the experts); metrics.json and "
            "TensorBoard have every term."
        )

    def write(self, storage: EventStorage) -> None:
        latest = storage.latest_smoothed()
        total, kinds, averaged = console_losses(latest)
        self._note(averaged)
        parts = [
            self._eta(storage),
            f"epoch: {storage.epoch}",
            f"iter: {storage.iter + 1}/{self._max_iter}",
        ]
        if total is not None:
            loss = f"loss: {total:.3g}"
            if len(kinds) > 1 or averaged:
                loss += f" ({', '.join(f'{k} {v:.3g}' for k, v in kinds)})"
            parts.append(loss)
        if "lr" in latest:
            parts.append(f"lr: {latest['lr'][0]:.3g}")
        if "images_per_sec" in latest:
            parts.append(f"img/s: {latest['images_per_sec'][0]:.0f}")
        logger.info("  ".join(parts))

    def close(self) -> None:
        pass


def default_writers(output_dir: str, max_iter: int, tensorboard: bool = True) -> list:
    """Console + ``metrics.json`` + TensorBoard writers for ``output_dir`` (the files are
    created on the first write)."""
    writers = [ConsoleWriter(max_iter), JSONWriter(RunDir(output_dir).metrics)]
    if tensorboard:
        writers.append(TensorboardWriter(os.path.join(output_dir, "tensorboard")))
    return writers


_CURRENT: Optional[EventStorage] = None


def get_event_storage() -> EventStorage:
    """The storage of the running trainer (hooks and models may record into it)."""
    if _CURRENT is None:
        raise RuntimeError("get_event_storage() called outside of a training run.")
    return _CURRENT


def set_event_storage(storage: Optional[EventStorage]) -> None:
    global _CURRENT
    _CURRENT = storage
