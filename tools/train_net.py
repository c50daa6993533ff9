#!/usr/bin/env python
"""Train and evaluate a ride_dive model from a config file.

    python tools/train_net.py --config-file configs/FashionMNIST-LT/bsce_r32.yaml
    python tools/train_net.py --config-file configs/FashionMNIST-LT/bsce_r32.yaml --resume
    python tools/train_net.py --config-file configs/FashionMNIST-LT/bsce_r32.yaml \
        --eval-only MODEL.WEIGHTS output/fmnist_lt/bsce_r32/model_final.pth
    # a pipeline file runs its stages in order (teacher -> student -> router)
    python tools/train_net.py --config-file configs/FashionMNIST-LT/ride_dive_pipeline.yaml
"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive.checkpoint import CheckpointError, CheckpointMismatchError  # noqa: E402
from ride_dive.config import ConfigError  # noqa: E402
from ride_dive.engine.pipeline import is_pipeline_file, run_pipeline  # noqa: E402
from ride_dive.engine import (  # noqa: E402
    DefaultTrainer,
    default_argument_parser,
    default_setup,
    launch,
    setup_cfg,
)

logger = logging.getLogger("ride_dive")


def main(args):
    if is_pipeline_file(args.config_file):
        if args.eval_only:
            raise ConfigError(
                "--eval-only evaluates one model: give a stage's config and its "
                "model_final.pth instead of the pipeline file"
            )
        # Every stage resumes or is skipped when finished, so --resume is implied.
        return run_pipeline(args.config_file, args.opts)
    cfg = setup_cfg(args.config_file, args.opts)
    default_setup(cfg, args)
    trainer = DefaultTrainer(cfg)
    if args.eval_only:
        if not cfg.MODEL.WEIGHTS:
            raise ConfigError("--eval-only needs MODEL.WEIGHTS <checkpoint.pth>.")
        trainer.checkpointer.load(cfg.MODEL.WEIGHTS, checkpointables=[])
        return trainer.test()
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def cli(argv=None) -> int:
    args = default_argument_parser().parse_args(argv)
    try:
        launch(
            main,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
    except (ConfigError, CheckpointError, CheckpointMismatchError, FileNotFoundError,
            FloatingPointError) as e:
        # Expected user-facing failures: one clear paragraph, no traceback wall.
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
