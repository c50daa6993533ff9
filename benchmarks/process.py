"""Whole ``tools/train_net.py`` processes with different overrides, timed side by side.

``tools/benchmark.py process`` runs the same config once per variant and round, alternating
the variants (and reversing their order every other round, so that none always runs
first), and prints the median wall time of each whole process (start-up, training, the
final evaluation) and its speed relative to the first variant. This is how a user meets the
framework's speed: the shipped config as is, against e.g. fp32 eager
(``SOLVER.AMP.ENABLED False MODEL.CHANNELS_LAST False``).
"""

import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

__all__ = ["DEFAULT_VARIANTS", "parse_variant", "process_table", "time_processes"]

_TRAIN_NET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")

DEFAULT_VARIANTS = (
    "fp32 eager, glibc malloc=SOLVER.AMP.ENABLED False MODEL.CHANNELS_LAST False "
    "CPU_KEEP_FREED_MEMORY False",
    "fp32 eager=SOLVER.AMP.ENABLED False MODEL.CHANNELS_LAST False",
    "shipped defaults, glibc malloc=CPU_KEEP_FREED_MEMORY False",
    "shipped defaults=",
)


def parse_variant(text: str) -> Tuple[str, List[str]]:
    """``"LABEL=KEY VALUE ..."`` -> (label, overrides)."""
    label, sep, opts = text.partition("=")
    if not sep or not label.strip():
        raise ValueError(f"--variant '{text}': write LABEL=KEY VALUE ... (overrides may be empty)")
    overrides = shlex.split(opts)
    if len(overrides) % 2:
        raise ValueError(f"--variant '{text}': overrides come in KEY VALUE pairs")
    return label.strip(), overrides


def _training_seconds(output_dir: str) -> float:
    """The trainer's own "Training time: X s" line (the epochs, without start-up and tests)."""
    with open(os.path.join(output_dir, "log.txt"), encoding="utf-8") as f:
        found = re.findall(r"Training time: ([0-9.]+) s", f.read())
    return float(found[-1]) if found else float("nan")


def _run_once(config_file: str, opts: Sequence[str], output_dir: str) -> Tuple[float, float]:
    command = [
        sys.executable,
        os.path.join(_TRAIN_NET, "train_net.py"),
        "--config-file",
        config_file,
        *opts,
        "OUTPUT_DIR",
        output_dir,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds, _training_seconds(output_dir)


def time_processes(
    config_file: str, common: Sequence[str], variants: Sequence[str], rounds: int
) -> Dict[str, List[Tuple[float, float]]]:
    """(process wall seconds, training seconds) of each variant per round, alternating."""
    parsed = [parse_variant(v) for v in variants]
    seconds = {label: [] for label, _ in parsed}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = parsed if r % 2 == 0 else parsed[::-1]
            for label, opts in order:
                out = os.path.join(tmp, f"r{r}_{len(seconds[label])}_{abs(hash(label))}")
                seconds[label].append(_run_once(config_file, [*common, *opts], out))
                wall, training = seconds[label][-1]
                print(f"  round {r + 1}: {label}: {wall:.1f} s ({training:.1f} s training)")
    return seconds


def process_table(seconds: Dict[str, List[Tuple[float, float]]]) -> str:
    """Markdown table: median (min-max) seconds of the whole process and of its training,
    and each one's speed relative to the first variant."""
    labels = list(seconds)

    def medians(label):
        walls, trainings = zip(*seconds[label])
        return statistics.median(walls), statistics.median(trainings), walls, trainings

    ref_wall, ref_train, _, _ = medians(labels[0])
    rows = [
        "| variant | process s (min-max) | speed vs first | training s (min-max) | "
        "speed vs first |",
        "|---|---|---|---|---|",
    ]
    for label in labels:
        wall, train, walls, trainings = medians(label)
        rows.append(
            f"| {label} | {wall:.1f} ({min(walls):.1f}-{max(walls):.1f}) | "
            f"{ref_wall / wall:.2f}x | {train:.1f} ({min(trainings):.1f}-{max(trainings):.1f}) "
            f"| {ref_train / train:.2f}x |"
        )
    return "\n".join(rows)
