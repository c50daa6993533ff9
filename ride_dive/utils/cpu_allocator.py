"""Keep freed CPU memory in the process instead of handing it back to the kernel (glibc).

PyTorch's CPU tensors come straight from ``malloc``. With glibc's defaults, blocks above the
mmap threshold are ``mmap``-ed and unmapped on every free, and freed memory at the top of the
heap is trimmed back to the kernel. A training step frees and re-allocates the same
activation buffers (megabytes each) every iteration, so every step then page-faults its
activations in again: about 6,500 minor faults per step for RIDE ResNet-32 with 4 experts at
batch 128 in bf16 on a 2-core CPU, against under 400 with both thresholds raised. That keeps
the pages mapped, what the jemalloc/tcmalloc preload recipes of CPU-inference guides
achieve, without a preload; what it saves in time is measured by ``python
tools/benchmark.py process`` (BENCHMARKS.md). The price is that the process's resident
memory stays at its peak rather than shrinking between steps.

Only glibc has ``mallopt``; elsewhere (macOS, musl, Windows) this does nothing.
"""

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["apply_cpu_memory_setting", "keep_freed_cpu_memory"]

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3
_TRIM_THRESHOLD = 2**31 - 1  # an int: never trim the heap's top
# glibc's own ceiling for its dynamic threshold (HEAP_MAX_SIZE / 2 on 64-bit). Measured on
# the 2-core VM (whole train_net runs, GLIBC_TUNABLES): 32 MiB trained a little faster than
# 1 GiB, and raising the trim threshold alone was much slower than glibc's defaults.
_MMAP_THRESHOLD = 32 * 2**20


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (raises AttributeError on musl)
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_cpu_memory() -> str:
    """Raise glibc's mmap and trim thresholds for this process; return what was done.

    Safe to call more than once. Returns a one-line description for the log ("" when the C
    library is not glibc and nothing changed).
    """
    libc = _glibc()
    if libc is None:
        return ""
    # Both or neither: the trim threshold raised alone made training slower, not faster.
    if not libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD):
        logger.debug("glibc mallopt refused the mmap threshold")
        return ""
    libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    return (
        f"CPU memory: freed blocks up to {_MMAP_THRESHOLD // 2**20} MiB stay in the process "
        "(glibc mmap/trim thresholds raised; CPU_KEEP_FREED_MEMORY False restores glibc's)"
    )


def apply_cpu_memory_setting(cfg) -> str:
    """``keep_freed_cpu_memory()`` when ``cfg.CPU_KEEP_FREED_MEMORY`` is on; its description."""
    return keep_freed_cpu_memory() if cfg.CPU_KEEP_FREED_MEMORY else ""
