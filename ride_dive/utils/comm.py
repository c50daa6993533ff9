"""Process-group helpers that also work when torch.distributed is not initialised."""

from typing import Dict, Tuple

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


def gather_predictions(
    logits: torch.Tensor, labels: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Concatenate every rank's logits and labels (rank order); identity without a group.

    Shards may differ in size, so the sizes are exchanged first and each shard is padded to
    the largest one for ``all_gather``, then trimmed. The sampler must not pad the dataset
    with duplicates (as ``DistributedSampler`` does), or the duplicates are counted twice.
    Any per-sample rows gather this way (features, per-expert values), not only logits.

    Args:
        logits: ``[n_rank, ...]`` rows of this rank.
        labels: ``[n_rank]`` labels of this rank.

    Returns:
        ``(logits, labels)`` of the whole evaluation set, on the CPU.
    """
    if not is_dist() or get_world_size() == 1:
        return logits, labels
    world = get_world_size()
    # NCCL only moves CUDA tensors; gloo and mpi take CPU ones.
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
    size = torch.tensor([len(labels)], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    longest = max(sizes)

    def _gather(t: torch.Tensor) -> torch.Tensor:
        padded = t.new_zeros((longest,) + tuple(t.shape[1:]), device=device)
        padded[: len(t)] = t.to(device)
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:n] for p, n in zip(parts, sizes)]).cpu()

    return _gather(logits), _gather(labels)
