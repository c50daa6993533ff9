"""Start one process per device (``--num-gpus``) or join a ``torchrun`` launch.

With ``torchrun`` the environment variables RANK/WORLD_SIZE/LOCAL_RANK are set and each
process initialises itself; with ``--num-gpus N`` this module spawns N local processes.
Backend: NCCL on CUDA, gloo on CPU.
"""

import logging
import os
from typing import Callable, Tuple

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

logger = logging.getLogger("ride_dive")


def _backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def _init_and_run(local_rank, main_func, world_size, num_per_machine, machine_rank, dist_url, args):
    rank = machine_rank * num_per_machine + local_rank
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    elif "OMP_NUM_THREADS" not in os.environ:
        # CPU processes share the cores instead of each starting one thread per core.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_per_machine))
    dist.init_process_group(_backend(), init_method=dist_url, world_size=world_size, rank=rank)
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    """True inside a process started by ``torchrun`` (or any env:// launcher)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def launch(
    main_func: Callable,
    num_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "tcp://127.0.0.1:29500",
    args: Tuple = (),
) -> None:
    """Run ``main_func(*args)`` in every process of the job.

    Args:
        main_func: the per-process entry point.
        num_per_machine: processes on this machine (GPUs, or CPU processes with gloo).
        num_machines: machines in the job.
        machine_rank: rank of this machine.
        dist_url: rendezvous address, e.g. ``tcp://host:port``.
        args: arguments for ``main_func``.
    """
    if launched_by_torchrun():
        if not dist.is_initialized():
            local_rank = int(os.environ["LOCAL_RANK"])
            if torch.cuda.is_available():
                torch.cuda.set_device(local_rank)
            dist.init_process_group(_backend(), init_method="env://")
        try:
            main_func(*args)
        finally:
            dist.destroy_process_group()
        return
    world_size = num_per_machine * num_machines
    if world_size <= 1:
        main_func(*args)
        return
    mp.start_processes(
        _init_and_run,
        nprocs=num_per_machine,
        args=(main_func, world_size, num_per_machine, machine_rank, dist_url, args),
        daemon=False,
        start_method="spawn",
    )
