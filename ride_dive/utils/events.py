"""Recording metrics (``EventStorage``) separately from emitting them (writers).

The trainer and hooks only ``put_scalar`` into the storage; writers (console with ETA,
``metrics.json``, TensorBoard) read it periodically, on the main process only.
"""

import datetime
import json
import logging
import os
from collections import defaultdict, deque
from typing import Dict, Optional

from .run_dir import RunDir

logger = logging.getLogger("ride_dive")


class EventStorage:
    """Scalars recorded during training, keyed by name, with a short smoothing window."""

    def __init__(self, start_iter: int = 0, window: int = 20):
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
    """Appends one JSON line of the latest (smoothed) scalars to ``metrics.json``."""

    def __init__(self, path: str):
        self._file = open(path, "a")
        self._last_written = -1

    def write(self, storage: EventStorage) -> None:
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
        self._file.close()


class TensorboardWriter:
    """Writes the latest scalars to TensorBoard event files in ``log_dir``."""

    def __init__(self, log_dir: str):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir)
        self._last_written = -1

    def write(self, storage: EventStorage) -> None:
        newest = self._last_written
        for name, (value, it) in storage.latest_smoothed().items():
            if it > self._last_written:
                self._writer.add_scalar(name, value, it)
                newest = max(newest, it)
        self._last_written = newest

    def close(self) -> None:
        self._writer.close()


class ConsoleWriter:
    """Logs losses, LR, speed and the ETA of the whole run."""

    def __init__(self, max_iter: int):
        self._max_iter = max_iter

    def write(self, storage: EventStorage) -> None:
        latest = storage.latest_smoothed()
        eta = ""
        if "time" in latest:
            seconds = storage.median("time") * max(self._max_iter - storage.iter - 1, 0)
            eta = f"eta: {datetime.timedelta(seconds=int(seconds))}  "
        losses = "  ".join(
            f"{k}: {v:.4g}" for k, (v, _) in sorted(latest.items()) if k.startswith("loss")
        )
        lr = f"lr: {latest['lr'][0]:.5g}  " if "lr" in latest else ""
        speed = f"img/s: {latest['images_per_sec'][0]:.0f}" if "images_per_sec" in latest else ""
        logger.info(
            f"{eta}epoch: {storage.epoch}  iter: {storage.iter + 1}/{self._max_iter}  "
            f"{losses}  {lr}{speed}"
        )

    def close(self) -> None:
        pass


def default_writers(output_dir: str, max_iter: int, tensorboard: bool = True) -> list:
    """Console + ``metrics.json`` + TensorBoard writers for ``output_dir``."""
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
