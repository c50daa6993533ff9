#!/usr/bin/env python
"""Train and evaluate a ride_dive model from a config file.

    python tools/train_net.py --config-file configs/FashionMNIST-LT/bsce_r32.yaml
    python tools/train_net.py --config-file configs/FashionMNIST-LT/bsce_r32.yaml --resume
    python tools/train_net.py --config-file configs/FashionMNIST-LT/bsce_r32.yaml \
        --eval-only MODEL.WEIGHTS output/fmnist_lt/bsce_r32/model_final.pth
    # a pipeline file runs its stages in order (teacher -> student -> router)
    python tools/train_net.py --config-file configs/FashionMNIST-LT/ride_dive_pipeline.yaml
    # several processes: --num-gpus N (or torchrun --nproc_per_node N tools/train_net.py ...)
    python tools/train_net.py --num-gpus 8 --config-file configs/ImageNet-LT/ride_4e_x50.yaml
"""

import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch.multiprocessing as mp  # noqa: E402

from ride_dive.config import ConfigError  # noqa: E402
from ride_dive.engine import (  # noqa: E402
    DefaultTrainer,
    default_argument_parser,
    default_setup,
    launch,
    save_config,
    setup_cfg,
)
from ride_dive.engine.cli import EXIT_USER_ERROR, USER_ERRORS  # noqa: E402
from ride_dive.engine.pipeline import is_pipeline_file, run_pipeline  # noqa: E402
from ride_dive.utils import comm  # noqa: E402
from ride_dive.utils.plugins import import_plugins  # noqa: E402

logger = logging.getLogger("ride_dive")


def main(args):
    import_plugins(args.plugin)  # again in a spawned process: its registries start empty
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
        trainer.resume_or_load(resume=False, training=False)
        return trainer.test()
    trainer.resume_or_load(resume=args.resume)
    if args.resume:  # only now: a resume that failed leaves the run's config.yaml alone
        save_config(cfg)
    return trainer.train()


def _print_error(error: BaseException) -> None:
    where = f" (process {comm.get_rank()})" if comm.get_world_size() > 1 else ""
    print(f"ERROR{where}: {error}", file=sys.stderr, flush=True)


def main_in_process(args):
    """``main`` in one process of the job: a user-facing error is printed there as one
    paragraph and ends that process with exit status 2 (the launcher then stops the rest)."""
    try:
        return main(args)
    except USER_ERRORS as e:
        _print_error(e)
        sys.exit(EXIT_USER_ERROR)


def cli(argv=None) -> int:
    args = default_argument_parser().parse_args(argv)
    try:
        import_plugins(args.plugin)
        if not is_pipeline_file(args.config_file):
            # Check the config once, before any process starts or any file is written.
            setup_cfg(args.config_file, args.opts)
        launch(
            main_in_process,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
    except USER_ERRORS as e:
        _print_error(e)
        return EXIT_USER_ERROR
    except SystemExit as e:  # main_in_process in this process: the message is printed
        return e.code if isinstance(e.code, int) else 1
    except mp.ProcessExitedException as e:  # a spawned process printed its own message
        print(
            f"ERROR: process {e.error_index} of the job stopped with exit status "
            f"{e.exit_code}; its message is above, and the other processes were stopped.",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR if e.exit_code == EXIT_USER_ERROR else 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
