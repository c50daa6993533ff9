"""Every hostile input of docs/HOSTILE_INPUTS.md, in the table's order: ``hostile_inputs.py``
runs them, ``hostile_fixtures.py`` builds the files they point at."""

from tests.hostile.hostile_case import NEVER_ADVISED, TRAIN_NET, Case, fresh_output
from tests.hostile.hostile_cases_config import CONFIG_CASES
from tests.hostile.hostile_cases_files import FILE_CASES
from tests.hostile.hostile_cases_pretrained import PRETRAINED_CASES

__all__ = [
    "CASES",
    "CASES_BY_ID",
    "NEVER_ADVISED",
    "REAL_PROCESS_CASES",
    "TRAIN_NET",
    "Case",
    "fresh_output",
]

CASES = CONFIG_CASES + FILE_CASES + PRETRAINED_CASES
CASES_BY_ID = {c.id: c for c in CASES}
# The cases tests/hostile/test_hostile_inputs.py also runs as real processes (the rest run
# the tool's cli() in the test process): a config error, a missing dataset, the malicious
# checkpoint, the wrong architecture, an error raised in a DataLoader worker, and the
# converter refusing a malicious pickle.
REAL_PROCESS_CASES = [
    "negative-epochs",
    "cifar-root-missing",
    "weights-malicious-eval",
    "weights-wrong-arch",
    "image-undecodable",
    "convert-popen",
]
