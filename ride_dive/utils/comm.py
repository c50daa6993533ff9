"""Process-group helpers that also work when torch.distributed is not initialised."""
from typing import Dict

import torch
import torch.distributed as dist


def is_dist() -> bool:
    """True when a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def is_main_process() -> bool:
    """Only the main process logs, writes TensorBoard/metrics and saves checkpoints."""
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across processes; a no-op in a single process."""
    if is_dist() and get_world_size() > 1:
        dist.barrier()


def reduce_mean(values: Dict[str, float], device: torch.device) -> Dict[str, float]:
    """Average scalar metrics over processes (identity in a single process)."""
    if not is_dist() or get_world_size() == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    t /= get_world_size()
    return {k: v.item() for k, v in zip(keys, t)}
