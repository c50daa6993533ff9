"""Keeping freed CPU memory in the process (ride_dive/utils/cpu_allocator.py)."""

import subprocess
import sys
import textwrap

import pytest

from ride_dive.config import get_cfg
from ride_dive.utils.cpu_allocator import _glibc, apply_cpu_memory_setting

needs_glibc = pytest.mark.skipif(_glibc() is None, reason="mallopt is glibc's")

# A training step's pattern: a dozen activations of 1-8 MiB allocated, touched and freed in
# another order, every step. Prints the minor page faults of steps 10-19 (past warm-up).
_FAULTS = textwrap.dedent(
    """
    import ctypes, random, resource, sys, torch
    from ride_dive.utils.cpu_allocator import keep_freed_cpu_memory
    if sys.argv[1] == "keep":
        assert keep_freed_cpu_memory()
    else:  # glibc's initial 128 KiB thresholds, fixed: no dynamic adjustment to depend on
        libc = ctypes.CDLL("libc.so.6")
        assert libc.mallopt(-3, 128 * 1024) and libc.mallopt(-1, 128 * 1024)
    rng = random.Random(0)
    def step():
        live = [torch.empty(rng.choice((1, 2, 3, 5, 8)) * 2**18).fill_(1.0) for _ in range(12)]
        rng.shuffle(live)
        while live:
            live.pop()
    for _ in range(10):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@needs_glibc
def test_freed_memory_is_not_faulted_in_again():
    # Each step touches ~48 MiB (~12,000 pages). With glibc's initial thresholds every block
    # is mapped and unmapped (~120,000 faults over the 10 steps); kept, ~2,000.
    assert _faults("default") > 60_000
    assert _faults("keep") < 10_000


@needs_glibc
def test_the_config_key_switches_it():
    cfg = get_cfg()
    assert cfg.CPU_KEEP_FREED_MEMORY
    assert "stay in the process" in apply_cpu_memory_setting(cfg)
    cfg.CPU_KEEP_FREED_MEMORY = False
    assert apply_cpu_memory_setting(cfg) == ""
