"""Process-group helpers: the single-process answers, and ``reduce_mean`` in a real
two-process gloo group."""

import datetime
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ride_dive.utils import comm


def test_single_process_answers():
    assert not dist.is_initialized()
    assert comm.is_dist() is False
    assert comm.get_world_size() == 1
    assert comm.get_rank() == 0
    assert comm.is_main_process() is True
    assert comm.synchronize() is None  # a no-op, not a barrier waiting for nobody


def test_reduce_mean_is_the_identity_in_one_process():
    values = {"loss_a": 1.25, "loss_b": -3.0}
    out = comm.reduce_mean(values, torch.device("cpu"))
    assert out is values and out == {"loss_a": 1.25, "loss_b": -3.0}
    empty = {}
    assert comm.reduce_mean(empty, torch.device("cpu")) is empty


def _two_process_worker(rank, init_file, out_dir):
    # A short timeout: a rank that dies early fails the test instead of hanging it.
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        # Keys given in different orders on the two ranks: reduce_mean sorts them.
        if rank == 0:
            values = {"b": 1.0, "a": 10.0, "c": 0.1}
        else:
            values = {"c": 0.2, "a": 30.0, "b": 4}
        reduced = comm.reduce_mean(values, torch.device("cpu"))
        comm.synchronize()
        info = {
            "world_size": comm.get_world_size(),
            "rank": comm.get_rank(),
            "main": comm.is_main_process(),
            "reduced": reduced,
            "empty": comm.reduce_mean({}, torch.device("cpu")),
        }
        torch.save(info, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_reduce_mean_averages_over_two_gloo_processes(tmp_path):
    # fork, not spawn: the children need nothing re-imported, which keeps this test ~1 s.
    mp.start_processes(
        _two_process_worker,
        args=(str(tmp_path / "store"), str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="fork",
    )
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for rank, info in enumerate(results):
        assert info["world_size"] == 2
        assert info["rank"] == rank
        assert info["main"] is (rank == 0)
        assert info["empty"] == {}
        # float64 all-reduce: the means are exact to double precision.
        assert info["reduced"] == {"a": 20.0, "b": 2.5, "c": (0.1 + 0.2) / 2}
        assert all(type(v) is float for v in info["reduced"].values())
