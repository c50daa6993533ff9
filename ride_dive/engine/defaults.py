"""Everything ``tools/train_net.py`` needs: argument parser, set-up, and ``DefaultTrainer``,
which builds data, model, optimizer, schedule, checkpointer and hooks from a cfg.

There is one trainer. Methods (CE, BSCE, LDAM-DRW, RIDE, DiVE, cRT, ...) differ by the
model, loss, sampler and config it is given.
"""

import argparse
import logging
import os
import sys
from typing import Dict, Optional

import torch
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import Checkpointer, atomic_write_text, load_trained_model, restore_rng_state
from ..config import CfgNode, ConfigError, assert_cfg, get_cfg
from ..data import (
    MixedBatches,
    build_datasets,
    build_train_loader,
    mixing_enabled,
    unaugmented_view,
)
from ..evaluation import (
    EvaluationContext,
    build_evaluators,
    evaluate,
    format_label_shift_table,
    format_results_table,
    run_evaluators,
    save_results_json,
    split_loader,
)
from ..modeling import build_model, check_soft_targets
from ..modeling.norm import to_sync_batch_norm
from ..modeling.training_setup import TrainingSetupContext
from ..solver import (
    build_lr_scheduler,
    build_optimizer,
    describe_lr_scaling,
    effective_batch_size,
)
from ..utils import comm
from ..utils.cpu_allocator import apply_cpu_memory_setting
from ..utils.env import amp_dtype, describe_precision, resolve_device, seed_all
from ..utils.events import default_writers
from ..utils.logger import setup_logger
from ..utils.modules import compile_for_training, unwrap_model
from ..utils.run_dir import RunDir, ensure_writable_dir
from . import hooks
from .train_loop import SimpleTrainer

logger = logging.getLogger("ride_dive")


def default_argument_parser(description: str = "ride_dive training") -> argparse.ArgumentParser:
    """``--config-file --resume --eval-only --num-gpus --num-machines --machine-rank
    --dist-url`` followed by ``KEY VALUE`` config overrides."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  python tools/train_net.py --config-file "
        "configs/FashionMNIST-LT/bsce_r32.yaml SOLVER.MAX_EPOCHS 10 OUTPUT_DIR out/x",
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to a config")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE_OR_MODULE",
        help="import this .py file or module first (your own registered "
        "losses, heads, evaluators, ...); repeatable",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT_DIR's last checkpoint (exactly)"
    )
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS only")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine")
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--machine-rank", type=int, default=0, help="rank of this machine")
    parser.add_argument(
        "--dist-url",
        default="tcp://127.0.0.1:29500",
        help="rendezvous URL for multi-process training",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides as KEY VALUE pairs"
    )
    return parser


def setup_cfg(config_file: str = "", opts=()) -> CfgNode:
    """Defaults ← config file (with ``_BASE_``) ← overrides, validated and frozen."""
    cfg = get_cfg()
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    assert_cfg(cfg)
    cfg.freeze()
    return cfg


def save_config(cfg: CfgNode) -> None:
    """Write the merged config to ``OUTPUT_DIR/config.yaml`` (main process, atomically)."""
    if comm.is_main_process():
        atomic_write_text(RunDir(cfg.OUTPUT_DIR).config, cfg.dump())


def default_setup(cfg: CfgNode, args: Optional[argparse.Namespace] = None) -> None:
    """Create OUTPUT_DIR, set up logging, save the merged config and seed everything.

    With ``args.resume`` the config is not saved here: the caller saves it (``save_config``)
    once the run's checkpoint has loaded, so a resume that fails (another architecture,
    missing data) leaves the run's ``config.yaml`` as it was.
    """
    rank = comm.get_rank()
    if comm.is_main_process():
        ensure_writable_dir(cfg.OUTPUT_DIR)
    setup_logger(cfg.OUTPUT_DIR, rank)
    logger.info(f"Command line: {' '.join(sys.argv)}")
    logger.info(f"Processes: {comm.get_world_size()}  torch {torch.__version__}")
    if not getattr(args, "resume", False):
        save_config(cfg)
    seed_all(cfg.SEED + rank)
    memory = apply_cpu_memory_setting(cfg)
    if memory:
        logger.info(memory)
    if cfg.DETERMINISTIC:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


class _RunSetupContext(TrainingSetupContext):
    """The ``TrainingSetupContext`` of a ``DefaultTrainer`` run."""

    def __init__(self, trainer: "DefaultTrainer"):
        self._trainer = trainer
        self.cfg = trainer.cfg
        self.model = unwrap_model(trainer.model)
        self.train_dataset = trainer.splits.train
        self.class_counts = trainer.splits.class_counts
        self.device = trainer.device

    @property
    def resumed(self) -> bool:
        return self._trainer.resumed

    @property
    def autocast_dtype(self):
        return amp_dtype(self.cfg)

    def load_model(self, cfg: CfgNode) -> torch.nn.Module:
        return load_trained_model(cfg, self.class_counts, self.device)

    def loader(self, dataset):
        return split_loader(self.cfg, unaugmented_view(self.cfg, dataset), self.device)


class DefaultTrainer:
    """Builds a full training run from a cfg; ``resume_or_load()``, then ``train()`` (which
    ends with ``test()``) or ``test()`` alone (``--eval-only``).

    The trainer knows no method. What a method needs before training is declared by its
    components (``before_training``, run by the ``PrepareForTraining`` hook); what its
    evaluation reports comes from ``build_evaluators``.

    Args:
        cfg: a validated config (see ``setup_cfg``).
    """

    def __init__(self, cfg: CfgNode):
        self.cfg = cfg
        self.run_dir = RunDir(cfg.OUTPUT_DIR)
        if comm.is_main_process():
            ensure_writable_dir(cfg.OUTPUT_DIR)
        # Seed here too (not only in default_setup) so that the model's initial weights
        # depend on cfg.SEED alone, however the trainer is created.
        seed_all(cfg.SEED + comm.get_rank())
        self.device = resolve_device(cfg.MODEL.DEVICE)
        self.splits = build_datasets(cfg)
        self.model = build_model(cfg, self.splits.class_counts)
        world, rank = comm.get_world_size(), comm.get_rank()
        if cfg.MODEL.BACKBONE.NORM == "SyncBN" and world > 1:
            if self.device.type == "cpu":
                raise ConfigError(
                    "MODEL.BACKBONE.NORM 'SyncBN' needs GPUs (PyTorch synchronises BatchNorm "
                    "over NCCL only); on CPU processes use 'BN' or 'GN'."
                )
            self.model = to_sync_batch_norm(self.model)
        self.optimizer = build_optimizer(cfg, self.model)
        logger.info(describe_lr_scaling(cfg, world))
        logger.info(describe_precision(cfg))
        loader = build_train_loader(
            cfg,
            self.splits.train,
            seed=cfg.SEED,
            num_replicas=world,
            rank=rank,
            device=self.device,
        )
        if mixing_enabled(cfg):  # MixUp / CutMix: soft targets, which every part must take
            check_soft_targets(self.model)
            loader = MixedBatches.from_config(cfg, loader, len(self.splits.class_counts))
        trained = self.model
        if world > 1:  # only the trainable model is wrapped (never a teacher)
            trained = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        # Compiled after the DDP wrap, as PyTorch advises (its DDP optimiser splits the graph
        # at the gradient buckets); self.model stays the plain module for checkpoints.
        trained = compile_for_training(trained, cfg)
        self.trainer = SimpleTrainer(
            trained,
            loader,
            self.optimizer,
            self.device,
            cfg.SOLVER.MAX_EPOCHS,
            seed=cfg.SEED,
            amp_dtype=amp_dtype(cfg),
            channels_last=cfg.MODEL.CHANNELS_LAST,
            clip_grad_norm=cfg.SOLVER.CLIP_GRAD_NORM,
            rank=rank,
            accumulate_steps=cfg.SOLVER.ACCUMULATE_STEPS,
        )
        self.scheduler = build_lr_scheduler(cfg, self.optimizer, self.trainer.iters_per_epoch)
        self.checkpointer = Checkpointer(
            self.model,
            cfg.OUTPUT_DIR,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            max_to_keep=cfg.SOLVER.MAX_TO_KEEP,
            is_main_process=comm.is_main_process(),
        )
        self.start_epoch = 0
        self.resumed = False
        self.timer = hooks.IterationTimer(effective_batch_size(cfg))
        self.trainer.register_hooks(self.build_hooks())
        # Built now so that a config asking for an evaluation the model cannot take fails
        # before training, not after it.
        self.evaluators = build_evaluators(cfg, self.model)
        for evaluator in self.evaluators:
            evaluator.check_data(self.splits)

    def build_hooks(self):
        """The hooks in their order: components' before-training steps, timer, LR schedule,
        periodic evaluation, checkpointing, writers."""
        cfg = self.cfg
        val = self.splits.val
        eval_split = val if val is not None else self.splits.test
        eval_hook = hooks.EvalHook(
            cfg.TEST.EVAL_PERIOD,
            lambda: evaluate(cfg, self.model, eval_split, self.splits.class_counts, self.device),
            split_name="val" if val is not None else "test",
            # The test split never selects a model: best tracking only with a val split.
            best_checkpointer=self.checkpointer if val is not None else None,
            metric=cfg.TEST.BEST_METRIC,
        )
        writers = []
        if comm.is_main_process():
            writers = default_writers(cfg.OUTPUT_DIR, self.trainer.max_iter)
        return [
            hooks.PrepareForTraining(_RunSetupContext(self)),
            self.timer,
            hooks.LRScheduler(self.scheduler),
            eval_hook if cfg.TEST.EVAL_PERIOD > 0 else None,
            hooks.PeriodicCheckpointer(self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD),
            hooks.PeriodicWriter(writers, cfg.LOG_PERIOD) if writers else None,
        ]

    def resume_or_load(self, resume: bool = True, training: bool = True) -> None:
        """With ``resume`` and a checkpoint in OUTPUT_DIR, continue it exactly (epoch, LR,
        optimizer, hooks, RNG); otherwise load MODEL.WEIGHTS (if set) into the model.

        This is also the whole of ``--eval-only``'s loading (``resume=False``,
        ``training=False``: routers a router stage would train must be in the file):
        nothing a method does before training happens here.
        """
        state = self.checkpointer.resume_or_load(
            self.cfg.MODEL.WEIGHTS, resume=resume, training=training
        )
        if resume and "epoch" in state:
            self.resumed = True
            self.start_epoch = int(state["epoch"])
            self.trainer.load_hooks_state_dict(state.get("hooks", {}))
            if "rng" in state:
                restore_rng_state(state["rng"])
            logger.info(f"Resuming at epoch {self.start_epoch}")

    def train(self) -> Dict:
        """Train (from the resumed epoch), then evaluate on the test split."""
        if self.start_epoch < self.cfg.SOLVER.MAX_EPOCHS:
            self.trainer.train(self.start_epoch)
        else:
            logger.info("Training already finished; evaluating only.")
        return self.test()

    def test(self) -> Dict:
        """The final evaluation, written to ``OUTPUT_DIR/results.json``.

        With a validation split and ``TEST.USE_BEST``, the weights are those of
        ``model_best.pth`` (chosen on validation). The entries come from the run's
        evaluators (``build_evaluators``: test and validation metrics, per expert, the
        router's selection on validation and its sweep, GMACs, tau-norm, ...), plus
        ``"weights"`` and, for a run that trained, ``"training_time_s"`` and
        ``"effective_batch_size"`` (``SOLVER.BATCH_SIZE`` x ``SOLVER.ACCUMULATE_STEPS``).
        """
        cfg = self.cfg
        weights = "final"
        best = self.run_dir.best_model
        if cfg.TEST.USE_BEST and self.splits.val is not None and os.path.isfile(best):
            self.checkpointer.load(best, checkpointables=[])
            weights = "best (validation)"
        results: Dict = {"weights": weights}
        if self.resumed or self.timer.training_seconds > 0:
            results["training_time_s"] = self.timer.training_seconds
            results["effective_batch_size"] = effective_batch_size(cfg)
        context = EvaluationContext(cfg, self.model, self.splits, self.device)
        results = run_evaluators(self.evaluators, context, results)
        if comm.is_main_process():
            save_results_json(results, self.run_dir.results)
            print(format_results_table(results, f"test ({weights} weights)"), flush=True)
            if "label_shift" in results:
                print(format_label_shift_table(results["label_shift"]), flush=True)
        return results
