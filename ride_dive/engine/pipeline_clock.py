"""The time left in a pipeline: every stage's iterations, measured rates and the line
each stage starts with (``stage i/n ... about N min left in all stages``)."""

import math
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from ..utils.events import (
    PipelineProgress,
    eta_seconds,
    format_rough_duration,
    set_pipeline_progress,
)

if TYPE_CHECKING:  # the pipeline module imports this one
    from .pipeline import Pipeline, PipelineStage

__all__ = ["PipelineClock"]


class PipelineClock:
    """The pipeline's remaining training iterations and the measured time per iteration.

    Args:
        pipeline: the pipeline.
        planned: ``{stage name: (epochs, batch size)}`` of the training stages still to run
            (None: unknown size), see ``_planned_stages``.
        clock: seconds now (``time.perf_counter``; tests pass a fake one).
    """

    def __init__(
        self,
        pipeline: "Pipeline",
        planned: Dict[str, Optional[Tuple[int, int]]],
        clock: Optional[Callable[[], float]] = None,
    ):
        self.pipeline = pipeline
        self.planned = planned
        self.clock = clock or time.perf_counter
        self.seconds = 0.0
        self.iters = 0
        self.measured_on: List[str] = []

    def later_iters(self, index: int, images_per_epoch: Optional[int]) -> Tuple[int, int]:
        """``(iterations, stages of unknown size)`` of the training stages after stage
        ``index``, each ``epochs x ceil(images_per_epoch / its batch size)``."""
        iters, unknown = 0, 0
        for stage in self.pipeline.stages[index + 1 :]:
            if stage.name not in self.planned:
                continue  # evaluates only, or finished before
            plan = self.planned[stage.name]
            if plan is None or not images_per_epoch:
                unknown += 1
                continue
            epochs, batch = plan
            iters += epochs * math.ceil(images_per_epoch / max(batch, 1))
        return iters, unknown

    def start(self, index: int, iters_left: int, images_per_epoch: Optional[int]) -> str:
        """The line for stage ``index``'s start, with ``iters_left`` iterations to train in
        it; sets the ``PipelineProgress`` the console writer reads."""
        stage = self.pipeline.stages[index]
        later, unknown = self.later_iters(index, images_per_epoch)
        set_pipeline_progress(
            PipelineProgress(index + 1, len(self.pipeline.stages), stage.name, later)
        )
        head = (
            f"[{self.pipeline.name}] stage {index + 1}/{len(self.pipeline.stages)} ({stage.name})"
        )
        total = iters_left + later
        extra = f"; {unknown} later stage(s) of unknown size not counted" if unknown else ""
        if total == 0:
            return f"{head}: no training left in the pipeline{extra}"
        if self.iters == 0:
            return (
                f"{head}: {total} training iterations left in all stages{extra}; the time "
                "left shows in the training lines' eta, (all ~...), once measured"
            )
        rate = self.seconds / self.iters
        left = format_rough_duration(eta_seconds(rate, total))
        return (
            f"{head}: about {left} left in all stages (an estimate: {total} training "
            f"iterations at the {rate:.3g} s/iteration measured on "
            f"{', '.join(self.measured_on)}; other stages may run at another speed){extra}"
        )

    def finished(self, stage: "PipelineStage", seconds: float, iters: int) -> None:
        """Stage ``stage`` trained ``iters`` iterations in ``seconds`` (building the run and
        the evaluations included)."""
        if iters > 0:
            self.seconds += seconds
            self.iters += iters
            self.measured_on.append(stage.name)
