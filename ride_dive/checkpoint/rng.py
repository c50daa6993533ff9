"""Capture and restore every random number generator a training run draws from.

Resuming must continue the same random streams (augmentation, sampler shuffles, dropout),
or a resumed run diverges from an uninterrupted one. The states are stored as tensors and
plain Python values so that the checkpoint loads with ``torch.load(weights_only=True)``;
``random.getstate()`` and ``np.random.get_state()`` return tuples and NumPy arrays, which
that loader would refuse or which would need NumPy globals.

Each process has its own generators; a checkpoint written by the main process holds the
main process's states.
"""

import logging
import random
from typing import Any, Dict

import numpy as np
import torch

logger = logging.getLogger(__name__)


def capture_rng_state() -> Dict[str, Any]:
    """Return the states of Python ``random``, NumPy's global RNG, torch CPU and CUDA.

    Returns:
        ``{"python": {...}, "numpy": {...}, "torch": ByteTensor, "cuda": [ByteTensor, ...]}``
        (``"cuda"`` only when CUDA is available). Only tensors, ints, floats, strings and
        None: safe for ``weights_only`` loading.
    """
    version, internal, gauss_next = random.getstate()
    name, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    state: Dict[str, Any] = {
        "python": {
            "version": int(version),
            # The Mersenne Twister words are < 2**32 and fit int64 exactly.
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "bit_generator": str(name),
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set the generators to a state returned by :func:`capture_rng_state`.

    Parts missing from ``state`` are left alone. CUDA states are restored only when CUDA is
    available; if the number of devices differs, the common ones are set and a warning
    says so.
    """
    if "python" in state:
        py = state["python"]
        internal = tuple(int(x) for x in py["state"].tolist())
        random.setstate((int(py["version"]), internal, py["gauss_next"]))
    if "numpy" in state:
        npy = state["numpy"]
        key = npy["key"].numpy().astype(np.uint32)
        np.random.set_state(
            (
                npy["bit_generator"],
                key,
                int(npy["pos"]),
                int(npy["has_gauss"]),
                float(npy["cached_gaussian"]),
            )
        )
    if "torch" in state:
        torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    cuda_states = state.get("cuda")
    if cuda_states:
        if not torch.cuda.is_available():
            logger.warning("Checkpoint holds CUDA RNG states but CUDA is not available; skipped.")
            return
        count = torch.cuda.device_count()
        if count != len(cuda_states):
            logger.warning(
                "Checkpoint holds CUDA RNG states for %d devices, this machine has %d; "
                "restoring the first %d.",
                len(cuda_states),
                count,
                min(count, len(cuda_states)),
            )
        for device, s in enumerate(cuda_states[:count]):
            torch.cuda.set_rng_state(s.to(torch.uint8).cpu(), device)
