"""DiVE's virtual examples: how many "images" the teacher's soft targets give each class.

The teacher's target for an image with logits z at temperature tau and power p is
``t = softmax(p * z / tau)`` (power normalisation of ``softmax(z / tau)`` with exponent p is
exactly this), and the virtual-example distribution is ``V_c = sum over training images of
t_c`` (docs/METHODS.md 6). Its Many / Medium / Few averages, next to the real counts', show how
much the targets flatten the long tail; DiVE's rule of thumb takes the smallest tau in 1..10
at which the Few average reaches the Many average.

Two ways in: from a logits matrix (``virtual_example_table``, ``pick_temperature``), or
streamed from a model over a loader (``teacher_virtual_examples``), which never holds the
``N x C`` logits (iNaturalist's training set would need 14 GB of them).
"""

import logging
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

from ..utils import comm
from ..utils.modules import inference_context, logits_of
from ..utils.shot_groups import shot_group_accuracy

logger = logging.getLogger("ride_dive")

__all__ = [
    "TEMPERATURES",
    "auto_temperature",
    "format_virtual_example_table",
    "pick_temperature",
    "shot_group_means",
    "table_from_distributions",
    "teacher_logits_on",
    "teacher_virtual_examples",
    "virtual_example_distribution",
    "virtual_example_table",
]

# DiVE's search range of the rule of thumb.
TEMPERATURES = tuple(range(1, 11))
# Float64 elements per softmax chunk (32 MB): bounds memory whatever N and C are.
_CHUNK_ELEMENTS = 1 << 22
# A perfectly flat distribution must count as flat despite float rounding in the means.
_FLAT_RTOL = 1e-9
_THIRDS = ("most-frequent third", "least-frequent third")

Grid = Dict[Tuple[float, float], torch.Tensor]


# ---------------------------------------------------------------------------------------
# Math on logits
# ---------------------------------------------------------------------------------------
def _check_grid(temperatures: Iterable[float], powers: Iterable[float]):
    temperatures = sorted(float(t) for t in temperatures)
    powers = list(dict.fromkeys(float(p) for p in powers))  # dedupe, keep order
    if not temperatures or not powers:
        raise ValueError("need at least one temperature and one power")
    if temperatures[0] <= 0 or min(powers) <= 0:
        raise ValueError(f"temperatures and powers must be > 0, got {temperatures}, {powers}")
    return temperatures, powers


def _target_sums(logits: torch.Tensor, scale: float) -> torch.Tensor:
    """``sum_i softmax(scale * z_i)`` in float64 on the logits' device, chunked over rows."""
    if logits.device.type == "mps":  # no float64 there
        logits = logits.cpu()
    total = torch.zeros(logits.shape[1], dtype=torch.float64, device=logits.device)
    rows = max(1, _CHUNK_ELEMENTS // max(1, logits.shape[1]))
    for chunk in logits.split(rows):
        total += torch.softmax(chunk.double() * scale, dim=1).sum(dim=0)
    return total


def virtual_example_distribution(
    logits: torch.Tensor, temperature: float, power: float = 1.0
) -> torch.Tensor:
    """``V_c = sum_i softmax(power * z_i / temperature)_c`` over the rows of ``logits``.

    Args:
        logits: ``(N, C)`` teacher logits of the training images.
        temperature: tau > 0.
        power: p > 0 of the power normalisation (1 = plain softmax at tau).

    Returns:
        ``(C,)`` float64 CPU tensor; it sums to N.
    """
    if logits.dim() != 2:
        raise ValueError(f"expected (N, C) logits, got shape {tuple(logits.shape)}")
    _check_grid([temperature], [power])
    return _target_sums(logits, float(power) / float(temperature)).cpu()


def shot_group_means(
    values, class_counts, many_threshold: int = 100, few_threshold: int = 20
) -> Dict[str, float]:
    """Mean of ``values`` over the Many / Medium / Few classes of ``class_counts``.

    Many: ``n_c > many_threshold``; Few: ``n_c < few_threshold``; Medium: the rest. The
    grouping is exactly that of the accuracy tables (it is the same function).

    Returns:
        ``{"many", "medium", "few"}`` floats; a group without classes is absent.
    """
    return shot_group_accuracy(values, class_counts, many_threshold, few_threshold)


def _head_tail(class_counts: Sequence[int], real: Mapping[str, float]):
    """``(head name, tail name, head classes, tail classes)`` compared for flatness.

    The most- and least-frequent non-empty shot groups (Many vs Few, or Medium when Few is
    empty); with a single group, the most- and least-frequent thirds of the classes (ties
    broken by class index). Group classes are None: their means come from the groups.
    """
    present = [g for g in ("many", "medium", "few") if g in real]
    if len(present) >= 2:
        return present[0], present[-1], None, None
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    order = torch.sort(counts, stable=True).indices
    k = max(1, len(order) // 3)
    return _THIRDS[0], _THIRDS[1], order[-k:], order[:k]


def table_from_distributions(
    distributions: Grid,
    class_counts: Sequence[int],
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> Dict:
    """The virtual-example table of ``{(temperature, power): V}`` (see
    :func:`virtual_example_table`)."""
    class_counts = [int(n) for n in class_counts]
    real = shot_group_means(class_counts, class_counts, many_threshold, few_threshold)
    head_name, tail_name, head_idx, tail_idx = _head_tail(class_counts, real)
    powers = list(dict.fromkeys(p for _, p in distributions))
    rows: List[Dict] = []
    picks, reached = {}, {}
    for power in powers:
        taus = sorted(t for t, p in distributions if p == power)
        block = []
        for tau in taus:
            v = distributions[(tau, power)].double().cpu()
            if len(v) != len(class_counts):
                raise ValueError(
                    f"{len(v)} classes in the distribution, {len(class_counts)} in class_counts"
                )
            groups = shot_group_means(v, class_counts, many_threshold, few_threshold)
            if head_idx is None:
                head, tail = groups[head_name], groups[tail_name]
            else:
                head, tail = float(v[head_idx].mean()), float(v[tail_idx].mean())
            block.append(
                {
                    "temperature": tau,
                    "power": power,
                    "effective_temperature": tau / power,
                    **groups,
                    "head": head,
                    "tail": tail,
                    "tail_head_ratio": tail / head if head > 0 else float("inf"),
                    "flat": tail >= head - _FLAT_RTOL * abs(head),
                }
            )
        flat = [r for r in block if r["flat"]]
        # Not flat anywhere: the flattest tau (ties: the smaller one).
        best = (
            flat[0] if flat else max(block, key=lambda r: (r["tail_head_ratio"], -r["temperature"]))
        )
        picks[power], reached[power] = best["temperature"], bool(flat)
        rows += block
    return {
        "real": real,
        "head_group": head_name,
        "tail_group": tail_name,
        "rows": rows,
        "picks": picks,
        "reached_flatness": reached,
    }


def virtual_example_table(
    logits: torch.Tensor,
    class_counts: Sequence[int],
    temperatures: Iterable[float] = TEMPERATURES,
    powers: Iterable[float] = (1.0, 0.5),
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> Dict:
    """Virtual-example group averages for every (temperature, power), and the picks.

    Args:
        logits: ``(N, C)`` teacher logits of the training images.
        class_counts: the real training images per class.
        temperatures, powers: the grid.
        many_threshold, few_threshold: shot-group thresholds (docs/METHODS.md 1).

    Returns:
        ``{"real": group means of the counts, "head_group", "tail_group": the pair compared
        for flatness, "rows": [{"temperature", "power", "effective_temperature" (tau / p),
        "many", "medium", "few" (absent for an empty group), "head", "tail",
        "tail_head_ratio", "flat"}, ...] (power by power, tau ascending), "picks": {power:
        tau}, "reached_flatness": {power: bool}}``. The pick is the smallest flat tau, or the
        one with the largest tail/head ratio when none is flat.
    """
    temperatures, powers = _check_grid(temperatures, powers)
    distributions = {
        (t, p): virtual_example_distribution(logits, t, p) for p in powers for t in temperatures
    }
    return table_from_distributions(distributions, class_counts, many_threshold, few_threshold)


def pick_temperature(
    logits: torch.Tensor,
    class_counts: Sequence[int],
    power: float = 0.5,
    temperatures: Iterable[float] = TEMPERATURES,
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> Tuple[float, bool]:
    """DiVE's rule of thumb: the smallest tau at which the tail average reaches the head's.

    Returns:
        ``(tau, reached_flatness)``; when no tau is flat, the one with the largest
        tail/head ratio and False.
    """
    power = float(power)
    table = virtual_example_table(
        logits, class_counts, temperatures, (power,), many_threshold, few_threshold
    )
    return float(table["picks"][power]), table["reached_flatness"][power]


# ---------------------------------------------------------------------------------------
# Running a teacher
# ---------------------------------------------------------------------------------------
def _batch_logits(model, loader, device, autocast_dtype):
    """Float32 logits of each batch; call inside ``inference_context``."""
    for images, _ in loader:
        with torch.autocast(
            device_type=device.type,
            dtype=autocast_dtype or torch.bfloat16,
            enabled=autocast_dtype is not None,
        ):
            output = model(images.to(device, non_blocking=True))
        yield logits_of(output).float()


def teacher_logits_on(
    model: torch.nn.Module, loader, device, autocast_dtype: Optional[torch.dtype] = None
) -> torch.Tensor:
    """Float32 ``(N, C)`` CPU logits of ``model`` over ``loader``'s ``(images, labels)``
    batches, in loader order (this rank's shard only in a distributed run).

    The model runs in eval mode under ``torch.inference_mode`` (and autocast with
    ``autocast_dtype`` when not None); its training flags are restored afterwards.
    """
    device = torch.device(device)
    with inference_context(model):
        parts = [z.cpu() for z in _batch_logits(model, loader, device, autocast_dtype)]
    if not parts:
        raise ValueError("the loader yielded no batch")
    return torch.cat(parts)  # outside inference mode: an ordinary tensor


def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    if not comm.is_dist() or comm.get_world_size() == 1:
        return t
    # NCCL only moves CUDA tensors; gloo takes CPU ones.
    on = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    t = t.to(on).clone()
    dist.all_reduce(t)
    return t


def teacher_virtual_examples(
    model: torch.nn.Module,
    loader,
    device,
    temperatures: Iterable[float] = TEMPERATURES,
    powers: Iterable[float] = (1.0, 0.5),
    autocast_dtype: Optional[torch.dtype] = None,
    num_classes: Optional[int] = None,
) -> Grid:
    """``{(temperature, power): V}`` of ``model`` over ``loader``, without keeping logits.

    Runs like :func:`teacher_logits_on` but adds each batch's targets to the sums at once,
    so memory is ``O(grid x C)``. In a distributed run the per-rank sums are added up, so
    every rank gets the whole training set's V.

    Args:
        num_classes: C; needed only if this rank's shard may be empty.
    """
    temperatures, powers = _check_grid(temperatures, powers)
    grid = [(t, p) for p in powers for t in temperatures]
    device = torch.device(device)
    sums = None if num_classes is None else torch.zeros(len(grid), num_classes, dtype=torch.float64)
    with inference_context(model):
        for z in _batch_logits(model, loader, device, autocast_dtype):
            batch = torch.stack([_target_sums(z, p / t) for t, p in grid]).cpu()
            sums = batch if sums is None else sums + batch
    if sums is None:
        raise ValueError("the loader yielded no batch (pass num_classes for empty shards)")
    sums = _sum_over_ranks(sums.clone()).cpu()
    return {key: sums[k] for k, key in enumerate(grid)}


def auto_temperature(
    teacher: torch.nn.Module,
    loader,
    class_counts: Sequence[int],
    device,
    power: float,
    autocast_dtype: Optional[torch.dtype] = None,
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> float:
    """``DISTILL.TEMPERATURE: auto``: DiVE's rule of thumb at ``power``.

    Measures the teacher's virtual examples over ``loader`` (the training split with the
    test-time transform), logs the table (p = 1 too, for reference) and the pick, warns when
    no tau in 1..10 makes the distribution flat, and returns the pick.
    """
    power = float(power)
    distributions = teacher_virtual_examples(
        teacher,
        loader,
        device,
        TEMPERATURES,
        (1.0, power),
        autocast_dtype=autocast_dtype,
        num_classes=len(class_counts),
    )
    table = table_from_distributions(distributions, class_counts, many_threshold, few_threshold)
    tau, flat = float(table["picks"][power]), table["reached_flatness"][power]
    if comm.is_main_process():
        logger.info(
            "Teacher's virtual examples on the training set:\n"
            + format_virtual_example_table(table)
        )
        logger.info(
            f"DISTILL.TEMPERATURE auto: tau = {tau:g} at DISTILL.POWER {power:g} "
            f"(effective temperature {tau / power:g})"
        )
        if not flat:
            logger.warning(
                f"No temperature in 1..10 makes the teacher's virtual examples flat at p = "
                f"{power:g} ({table['tail_group']} average below the {table['head_group']} "
                f"average); using the flattest, tau = {tau:g}. Consider setting "
                "DISTILL.TEMPERATURE explicitly."
            )
    return tau


# ---------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------
def _num(row: Mapping, key: str) -> str:
    return f"{row[key]:.1f}" if key in row else "-"


def format_virtual_example_table(table: Mapping) -> str:
    """The table as aligned text: the real counts first, one line per (power, tau), then
    the picks. ``tail/head`` is the ratio the rule of thumb compares with 1."""
    headers = ["", "p", "tau", "tau/p", "many", "medium", "few", "tail/head", "flat"]
    real = table["real"]
    lines = [
        ["real counts", "", "", "", *(_num(real, g) for g in ("many", "medium", "few")), "", ""]
    ]
    for r in table["rows"]:
        lines.append(
            [
                "",
                f"{r['power']:g}",
                f"{r['temperature']:g}",
                f"{r['effective_temperature']:g}",
                *(_num(r, g) for g in ("many", "medium", "few")),
                f"{r['tail_head_ratio']:.3f}",
                "yes" if r["flat"] else "",
            ]
        )
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(headers)]
    out = [
        f"Virtual examples per class, mean over each shot group (flat: the "
        f"{table['tail_group']} average reaches the {table['head_group']} average)"
    ]
    out += ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in [headers] + lines]
    picks = []
    for power, tau in table["picks"].items():
        note = "flat" if table["reached_flatness"][power] else "NOT flat: the flattest"
        picks.append(f"p={power:g}: tau={tau:g} (effective {tau / power:g}, {note})")
    out.append("picks: " + "; ".join(picks))
    return "\n".join(out)
