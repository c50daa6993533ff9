"""Standard hooks, registered by ``DefaultTrainer`` in this order: the components'
before-training steps, timer, LR schedule, evaluation, checkpointing, writers. Evaluation
precedes checkpointing so that a resumable checkpoint already holds this epoch's
best-so-far score; writers come last so they see everything recorded during the step."""

import logging
import time
from typing import Callable, Dict, List, Optional

import torch

from ..checkpoint import Checkpointer, capture_rng_state
from ..modeling.training_setup import TrainingSetupContext, prepare_for_training
from ..utils.run_dir import RunDir
from .train_loop import HookBase

logger = logging.getLogger("ride_dive")


class PrepareForTraining(HookBase):
    """Runs the model's components' ``before_training`` steps (teacher, ``auto`` tau, cRT
    re-initialisation, ...; see ``modeling.training_setup``) before the first step.

    Args:
        context: what the steps get (the run, and services to load a model or a loader).
    """

    def __init__(self, context: TrainingSetupContext):
        self.context = context

    def before_train(self):
        prepare_for_training(self.context.model, self.context)


class IterationTimer(HookBase):
    """Records the step time and the training throughput (images/s), and the training time.

    ``training_seconds`` is the wall time of the training loop, summed over the sessions of
    a resumed run (it is part of the hooks' checkpoint state).
    """

    def __init__(self, batch_size: int):
        self._batch_size = batch_size
        self._start = 0.0
        self._train_start: Optional[float] = None
        self._earlier_seconds = 0.0

    @property
    def training_seconds(self) -> float:
        """Seconds in the training loop so far, this session and the resumed ones."""
        if self._train_start is None:
            return self._earlier_seconds
        return self._earlier_seconds + time.perf_counter() - self._train_start

    def before_train(self):
        self._train_start = time.perf_counter()

    def before_step(self):
        self._start = time.perf_counter()

    def after_step(self):
        elapsed = time.perf_counter() - self._start
        self.trainer.storage.put_scalar("time", elapsed)
        self.trainer.storage.put_scalar("images_per_sec", self._batch_size / max(elapsed, 1e-9))

    def after_train(self):
        if self._train_start is None:  # a step before training failed
            return
        total = time.perf_counter() - self._train_start
        logger.info(f"Training time: {total:.1f} s")
        self._earlier_seconds += total
        self._train_start = None

    def state_dict(self) -> Dict:
        return {"training_seconds": self.training_seconds}

    def load_state_dict(self, state: Dict) -> None:
        self._earlier_seconds = float(state.get("training_seconds", 0.0))


class LRScheduler(HookBase):
    """Steps a per-iteration scheduler and records the current learning rate."""

    def __init__(self, scheduler: torch.optim.lr_scheduler.LRScheduler):
        self.scheduler = scheduler

    def after_step(self):
        lr = self.trainer.optimizer.param_groups[0]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing=False)
        self.scheduler.step()


class PeriodicCheckpointer(HookBase):
    """Saves a resumable checkpoint every ``period`` epochs and at the last epoch.

    The saved ``epoch`` is the next epoch to run, so ``--resume`` restarts at an epoch
    boundary, where the sampler and augmentation are replayable from the seed.
    """

    def __init__(self, checkpointer: Checkpointer, period: int):
        self.checkpointer = checkpointer
        self.period = period

    def after_epoch(self):
        next_epoch = self.trainer.epoch + 1
        if next_epoch % self.period == 0 or next_epoch == self.trainer.max_epochs:
            self.checkpointer.save(
                self.checkpointer.periodic_name(next_epoch),
                epoch=next_epoch,
                iteration=self.trainer.iter,
                rng=capture_rng_state(),
                hooks=self.trainer.hooks_state_dict(),
            )

    def after_train(self):
        if self.trainer.epoch >= self.trainer.max_epochs:
            self.checkpointer.save(RunDir.FINAL, epoch=self.trainer.max_epochs)


class EvalHook(HookBase):
    """Evaluates every ``period`` epochs; on a validation split it also keeps the best model.

    Model selection looks only at the split ``eval_fn`` evaluates. ``DefaultTrainer`` passes
    the validation split when there is one; without one it passes the test split for
    monitoring only and ``best_checkpointer`` is None, so the test split never picks a model.
    """

    def __init__(
        self,
        period: int,
        eval_fn: Callable[[], Dict],
        split_name: str,
        best_checkpointer: Optional[Checkpointer] = None,
        metric: str = "top1",
    ):
        self.period = period
        self.eval_fn = eval_fn
        self.split_name = split_name
        self.best_checkpointer = best_checkpointer
        self.metric = metric
        self.best_score: Optional[float] = None
        self.best_epoch: Optional[int] = None

    def after_epoch(self):
        next_epoch = self.trainer.epoch + 1
        if self.period <= 0 or next_epoch % self.period != 0:
            return
        # Whatever eval_fn does to the modes, training goes on with each module's own flag.
        modes = [(module, module.training) for module in self.trainer.model.modules()]
        try:
            results = self.eval_fn()
        finally:
            for module, training in modes:
                module.training = training
        scalars = {k: v for k, v in results.items() if isinstance(v, (int, float))}
        for key, value in scalars.items():
            self.trainer.storage.put_scalar(f"{self.split_name}/{key}", value, smoothing=False)
        summary = "  ".join(f"{k}: {v:.2f}" for k, v in scalars.items() if k != "num_samples")
        logger.info(f"Epoch {next_epoch} {self.split_name}: {summary}")
        if self.best_checkpointer is None:
            return
        score = results[self.metric]
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch = score, next_epoch
            # tag_last=False: --resume must continue from the periodic checkpoint, which
            # carries the optimizer/RNG/hook state, not from model_best.
            self.best_checkpointer.save(
                RunDir.BEST,
                tag_last=False,
                epoch=next_epoch,
                **{f"{self.split_name}_{self.metric}": score},
            )
            logger.info(
                f"New best {self.split_name} {self.metric} {score:.2f} at epoch {next_epoch}"
            )

    def state_dict(self) -> Dict:
        if self.best_score is None:
            return {}
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Dict) -> None:
        self.best_score = state.get("best_score")
        self.best_epoch = state.get("best_epoch")


class PeriodicWriter(HookBase):
    """Flushes the event storage to the writers every ``period`` iterations and at the end."""

    def __init__(self, writers: List, period: int = 20):
        self.writers = writers
        self.period = period

    def _write(self):
        for writer in self.writers:
            writer.write(self.trainer.storage)

    def after_step(self):
        it = self.trainer.iter + 1
        # The last step of an epoch is written by after_epoch (with that epoch's evaluation),
        # so that it is not written twice.
        if it % self.trainer.iters_per_epoch == 0:
            return
        if it % self.period == 0 or it == self.trainer.max_iter:
            self._write()

    def after_epoch(self):
        self._write()

    def after_train(self):
        for writer in self.writers:
            writer.close()
