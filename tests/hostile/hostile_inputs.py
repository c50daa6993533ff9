#!/usr/bin/env python
"""Feed tools/train_net.py (and tools/convert_checkpoint.py) hostile inputs and print what a
user sees (docs/HOSTILE_INPUTS.md).

The test oracle: ``python -m pytest tests/hostile -q`` runs every case as a test
(tests/hostile/test_hostile_inputs.py). Run as a script, it regenerates the table:

    python tests/hostile/hostile_inputs.py          # every case; prints the markdown table
    python tests/hostile/hostile_inputs.py --only list-bad-line weights-malicious-eval
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile   # keep the generated inputs
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile --build-only   # inputs only
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile --commands     # commands only

Each case runs ``python tools/train_net.py ARGS`` (or the case's other tool) in a fresh
process, exactly as a user would, on tiny generated inputs (a synthetic set, a 6-image
ImageNet-LT-style list set, a 40-image CIFAR-10 folder, broken config files, checkpoints of
width-0.25 ResNet-32s and of tiny networks of the original RIDE / classifier-balancing code),
and checks the exit code, key phrases of the message, that no Python traceback was printed,
and what must not change: the marker file a malicious pickle would create, the checkpoints of
a run that ``--resume`` was pointed at, and the output folder of a run refused up front.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # run as a script: make ``ride_dive`` and ``tests`` importable

from tests.hostile.hostile_cases import (  # noqa: E402
    CASES,
    CASES_BY_ID,
    NEVER_ADVISED,
    REAL_PROCESS_CASES,
    Case,
    fresh_output,
)
from tests.hostile.hostile_fixtures import (  # noqa: E402
    LISTS,
    MARKER,
    RIDE,
    TINY,
    build_fixtures,
)


def snapshot(case: Case, root: str) -> Dict[str, bytes]:
    """The files ``case.check`` says must not change."""
    if case.check in ("marker", "output-empty"):
        return {}
    run = os.path.join(root, "run")
    names = sorted(os.listdir(run))
    if case.check == "run-checkpoints":
        names = [n for n in names if n.endswith(".pth") or n in ("last_checkpoint", "config.yaml")]
    contents = {}
    for name in names:
        path = os.path.join(run, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                contents[name] = f.read()
    return contents


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def run_subprocess(case: Case, root: str) -> Outcome:
    """``python tools/<case.tool> ARGS`` in a fresh process, from the repository root."""
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", case.tool), *case.args(root)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    return Outcome(r.returncode, r.stdout, r.stderr)


def _written(folder: str) -> List[str]:
    """The files under ``folder`` (none when it does not exist)."""
    return sorted(
        os.path.relpath(os.path.join(d, n), folder)
        for d, _, names in os.walk(folder)
        for n in names
    )


def check(case: Case, root: str, outcome: Outcome, before: Dict[str, bytes]) -> List[str]:
    """What is wrong with ``outcome`` (an empty list when the case behaved)."""
    problems = []
    text = outcome.stderr if case.exit_code else outcome.stdout + outcome.stderr
    if outcome.exit_code != case.exit_code:
        problems.append(f"exit code {outcome.exit_code}, expected {case.exit_code}")
    if "Traceback" in outcome.stderr:
        problems.append("a traceback was printed")
    for phrase in (case.expect, *case.also):
        if phrase.replace("$H", root) not in text:
            problems.append(f"'{phrase}' is not in the output")
    for phrase in (*case.absent, *NEVER_ADVISED):
        if phrase.replace("$H", root) in text:
            problems.append(f"'{phrase}' is in the output")
    if os.path.exists(os.path.join(root, MARKER)):
        problems.append("the malicious payload ran (marker file created)")
    if snapshot(case, root) != before:
        problems.append("files of the resumed run changed")
    if case.check == "output-empty":
        fresh = fresh_output(root, case.id)
        if not any(a == fresh or a.startswith(fresh + os.sep) for a in case.args(root)):
            problems.append(f"the case does not write to {fresh}")
        written = _written(fresh)
        if written:
            problems.append(f"files were written to {fresh}: {', '.join(written)}")
    return problems


def user_sees(case: Case, outcome: Outcome, root: str) -> str:
    """The line(s) of the output a user reads, with the fixture folder shortened to $H."""
    if case.exit_code:
        lines = outcome.stderr.strip().splitlines()
        text = " ".join(line.strip() for line in lines)
    else:
        hits = [ln for ln in outcome.stdout.splitlines() if case.expect in ln]
        text = hits[0].split("] ", 1)[-1] if hits else ""
    return text.replace(root, "$H").replace(ROOT + os.sep, "")


def _markdown(rows) -> str:
    out = ["| # | input tried | what the user sees | exit code | test |", "|---|---|---|---|---|"]
    for i, (case, seen) in enumerate(rows, start=1):
        seen = seen if len(seen) <= 700 else seen[:697] + "..."
        seen = seen.replace("|", "\\|")
        test = f"`[{case.id}]`"
        if case.id in REAL_PROCESS_CASES:
            test += " (also in a real process)"
        if case.tests:
            test += f", `{case.tests}`"
        out.append(f"| {i} | {case.input} | `{seen}` | {case.exit_code} | {test} |")
    return "\n".join(out)


def _command(case: Case, root: str) -> str:
    args = case.args(root)
    shown = []
    i = 0
    while i < len(args):  # TINY, LISTS and RIDE are printed as variables
        for name, block in (("$TINY", TINY), ("$LISTS", LISTS), ("$RIDE", RIDE)):
            if args[i : i + len(block)] == block:
                shown.append(name)
                i += len(block)
                break
        else:
            shown.append(shlex.quote(args[i]))
            i += 1
    command = f"python tools/{case.tool} " + " ".join(shown)
    return command.replace(root, "$H").replace(ROOT + os.sep, "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="case ids to run")
    parser.add_argument("--keep", default="", help="build the inputs in this folder and keep it")
    parser.add_argument("--commands", action="store_true", help="print the commands only")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="only write the inputs (into --keep) to run commands by hand",
    )
    args = parser.parse_args(argv)
    cases = [CASES_BY_ID[i] for i in args.only] if args.only else CASES
    root = args.keep or tempfile.mkdtemp(prefix="hostile_")
    os.makedirs(root, exist_ok=True)
    if args.commands:
        print(f"H={root}\nTINY='{' '.join(TINY)}'\nLISTS='{' '.join(LISTS)}'")
        print(f"RIDE='{' '.join(RIDE)}'")
        print("\n".join(f"# {c.id}\n{_command(c, root)}" for c in cases))
        return 0
    build_fixtures(root)
    if args.build_only:
        print(root)
        return 0
    rows, failures, skipped = [], 0, 0
    for case in cases:
        reason = case.skip() if case.skip else ""
        if reason:
            skipped += 1
            print(f"skipped {case.id}: {reason}", file=sys.stderr)
            continue
        before = snapshot(case, root)
        outcome = run_subprocess(case, root)
        problems = check(case, root, outcome, before)
        if problems:
            failures += 1
            print(
                f"FAILED {case.id}: {'; '.join(problems)}\n{outcome.stderr[-3000:]}",
                file=sys.stderr,
            )
        rows.append((case, user_sees(case, outcome, root)))
    print(_markdown(rows))
    ran = len(cases) - skipped
    print(
        f"\n{ran - failures}/{ran} cases behaved, {skipped} skipped (inputs in {root})",
        file=sys.stderr,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
