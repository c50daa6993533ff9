"""The one training loop: epochs of iterations, with hooks around each.

Methods differ by model, loss and config, never by a trainer subclass. The loop is
epoch-based because long-tailed recipes are: samplers, DRW and RIDE's temperature switch
at epoch boundaries, and an epoch is replayable from (seed, epoch) alone, which is what
makes ``--resume`` exact.
"""

import logging
import math
import time
from contextlib import nullcontext
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..utils import comm
from ..utils.env import epoch_seed
from ..utils.events import EventStorage, set_event_storage

logger = logging.getLogger("ride_dive")


class HookBase:
    """Extension point called by the trainer; ``self.trainer`` is set on registration.

    Hooks run in registration order. A hook that must survive ``--resume`` (e.g. the best
    validation score so far) implements ``state_dict`` / ``load_state_dict``.
    """

    trainer: "SimpleTrainer" = None

    def before_train(self): ...

    def after_train(self): ...

    def before_epoch(self): ...

    def after_epoch(self): ...

    def before_step(self): ...

    def after_step(self): ...

    def state_dict(self) -> Dict:
        return {}

    def load_state_dict(self, state: Dict) -> None: ...


Batch = Tuple[torch.Tensor, torch.Tensor]


class SimpleTrainer:
    """Runs ``model(images, labels) -> dict of losses``, sums them and takes an SGD step.

    With ``accumulate_steps`` k > 1 one iteration (one optimizer step, one LR-schedule step,
    one ``before_step``/``after_step``, one logged row) runs k consecutive loader batches,
    each backward-ed with its share of the group's images as weight, so the gradient is that
    of the mean loss over all the group's images: the step of one k-times larger batch for a
    model without batch statistics (BatchNorm sees the micro-batches). An epoch has
    ``ceil(len(loader) / k)`` iterations (the last group may be shorter), so epochs and
    checkpoints always end on a step boundary and resume needs no accumulation state.

    Args:
        model: in train mode returns a dict of named scalar losses.
        data_loader: iterable of ``(images, labels)`` with ``set_epoch(epoch)`` and ``len``.
        optimizer: the optimizer over the trainable parameters.
        device: where batches are moved.
        max_epochs: epochs to train in total.
        seed: base seed; each epoch reseeds torch from (seed, epoch, rank).
        amp_dtype: autocast dtype (``torch.bfloat16``/``torch.float16``) or None for fp32.
        channels_last: move input batches to channels_last memory format.
        clip_grad_norm: clip the global gradient norm when > 0.
        rank: process rank (only changes the per-epoch seed).
        accumulate_steps: loader batches per optimizer step (``SOLVER.ACCUMULATE_STEPS``).
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        max_epochs: int,
        seed: int = 0,
        amp_dtype: Optional[torch.dtype] = None,
        channels_last: bool = False,
        clip_grad_norm: float = 0.0,
        rank: int = 0,
        accumulate_steps: int = 1,
    ):
        if accumulate_steps < 1:
            raise ValueError(f"accumulate_steps must be >= 1, got {accumulate_steps}")
        self.model = model
        self.data_loader = data_loader
        self.optimizer = optimizer
        self.device = device
        self.max_epochs = max_epochs
        self.seed = seed
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.clip_grad_norm = clip_grad_norm
        self.rank = rank
        self.accumulate_steps = accumulate_steps
        self.iters_per_epoch = math.ceil(len(data_loader) / accumulate_steps)
        self.max_iter = max_epochs * self.iters_per_epoch
        self.epoch = 0
        self.iter = 0
        self.storage: Optional[EventStorage] = None
        self._hooks: List[HookBase] = []
        # fp16 needs loss scaling; bf16 has fp32's range and does not.
        use_scaler = amp_dtype == torch.float16 and device.type == "cuda"
        self.grad_scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def register_hooks(self, hooks: List[Optional[HookBase]]) -> None:
        for hook in hooks:
            if hook is not None:
                hook.trainer = self
                self._hooks.append(hook)

    @property
    def hooks(self) -> List[HookBase]:
        return list(self._hooks)

    def _call(self, stage: str) -> None:
        for hook in self._hooks:
            getattr(hook, stage)()

    def train(self, start_epoch: int = 0) -> None:
        """Train from ``start_epoch`` up to ``max_epochs``."""
        self.epoch = start_epoch
        self.iter = start_epoch * self.iters_per_epoch
        self.storage = EventStorage(self.iter)
        set_event_storage(self.storage)
        logger.info(
            f"Training epochs {start_epoch}..{self.max_epochs - 1} "
            f"({self.iters_per_epoch} iterations each)"
        )
        try:
            self._call("before_train")
            for self.epoch in range(start_epoch, self.max_epochs):
                self.storage.epoch = self.epoch
                self._prepare_epoch()
                self._call("before_epoch")
                self.run_epoch()
                self._call("after_epoch")
            self.epoch = self.max_epochs
        finally:
            self._call("after_train")
            set_event_storage(None)

    def _prepare_epoch(self) -> None:
        """Everything random in an epoch derives from (seed, epoch, rank)."""
        torch.manual_seed(epoch_seed(self.seed, self.epoch, self.rank))
        self.data_loader.set_epoch(self.epoch)
        # Epoch-dependent parts (DRW losses, RIDE's temperature) expose set_epoch.
        for module in self.model.modules():
            if callable(getattr(module, "set_epoch", None)):
                module.set_epoch(self.epoch)
        self.model.train()

    def _step_groups(self) -> Iterator[List[Batch]]:
        """The epoch's batches in groups of ``accumulate_steps`` (the last may be shorter)."""
        group: List[Batch] = []
        for batch in self.data_loader:
            group.append(batch)
            if len(group) == self.accumulate_steps:
                yield group
                group = []
        if group:
            yield group

    def run_epoch(self) -> None:
        data_start = time.perf_counter()
        for group in self._step_groups():
            self.storage.iter = self.iter
            self.storage.put_scalar("data_time", time.perf_counter() - data_start)
            self._call("before_step")
            self.run_step(group)
            self._call("after_step")
            self.iter += 1
            data_start = time.perf_counter()

    def run_step(self, group: Sequence[Batch]) -> None:
        """One optimizer step over ``group``: one or more ``(images, labels)`` batches."""
        sizes = [len(labels) for _, labels in group]
        logged: Dict[str, float] = {}
        self.optimizer.zero_grad(set_to_none=True)
        for i, (images, labels) in enumerate(group):
            weight = sizes[i] / sum(sizes)
            # DDP all-reduces gradients at the group's last backward only.
            defer_sync = i < len(group) - 1 and hasattr(self.model, "no_sync")
            with self.model.no_sync() if defer_sync else nullcontext():
                values = self._backward(images, labels, weight)
            for k, v in values.items():
                logged[k] = logged.get(k, 0.0) + weight * v
        if self.grad_scaler is not None:
            self.grad_scaler.unscale_(self.optimizer)
            self._clip()
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self._clip()
            self.optimizer.step()
        self.storage.put_scalars(total_loss=sum(logged.values()), **logged)

    def _backward(self, images: torch.Tensor, labels: torch.Tensor, weight: float):
        """Forward one batch, check its loss, backward ``weight`` times it; its loss terms."""
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            loss_dict = self.model(images, labels)
        total = sum(loss_dict.values())
        # Averaged over processes: the logged losses describe the global batch, and every
        # rank sees the same non-finite total, so all ranks stop together (none hangs in
        # DDP's gradient all-reduce waiting for a rank that has stopped).
        values = comm.reduce_mean(
            {k: v.detach().float().item() for k, v in loss_dict.items()}, self.device
        )
        total_value = sum(values.values())
        if not math.isfinite(total_value):
            raise FloatingPointError(
                f"Loss became {total_value} at epoch {self.epoch}, iteration {self.iter} "
                f"(terms: {values}). Training stopped; the last checkpoint written before this "
                "point is intact. Lower SOLVER.BASE_LR, lengthen SOLVER.WARMUP_EPOCHS or turn "
                "off SOLVER.AMP to continue."
            )
        if weight != 1.0:
            total = total * weight
        if self.grad_scaler is not None:
            self.grad_scaler.scale(total).backward()
        else:
            total.backward()
        return values

    def _clip(self) -> None:
        if self.clip_grad_norm > 0:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def hooks_state_dict(self) -> Dict[str, Dict]:
        """State of every hook that has any, keyed by hook class name (saved for resume)."""
        return {type(h).__name__: h.state_dict() for h in self._hooks if h.state_dict()}

    def load_hooks_state_dict(self, state: Dict[str, Dict]) -> None:
        for hook in self._hooks:
            if type(hook).__name__ in state:
                hook.load_state_dict(state[type(hook).__name__])
