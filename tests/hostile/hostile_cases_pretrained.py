"""The hostile pretrained-trunk files (``MODEL.BACKBONE.PRETRAINED``): a missing file, a
tampered pickle, a sha256 that differs."""

import os

from tests.hostile.hostile_case import Case, _out
from tests.hostile.hostile_fixtures import TINY

PRETRAINED_TESTS = "tests/modeling/test_library_trunks.py"


def _pretrained(path: str) -> list:
    """A torchvision ResNet-18 trunk whose pretrained weights are ``path``."""
    return [
        "MODEL.BACKBONE.NAME",
        "TorchvisionBackbone",
        "MODEL.BACKBONE.ARCH",
        "resnet18",
        "MODEL.BACKBONE.PRETRAINED",
        path,
    ]


PRETRAINED_CASES = [
    # --- pretrained trunks (MODEL.BACKBONE.PRETRAINED) ---------------------------------------
    Case(
        "pretrained-missing",
        "pretrained trunk file that does not exist",
        lambda h: TINY + _pretrained(os.path.join(h, "nope.pth")) + _out(h),
        "MODEL.BACKBONE.PRETRAINED='$H/nope.pth': no such file",
        tests=PRETRAINED_TESTS,
    ),
    Case(
        "pretrained-malicious",
        "pretrained trunk file whose pickle runs `os.system`",
        lambda h: TINY + _pretrained(os.path.join(h, "evil.pth")) + _out(h),
        "nothing in the file was executed",
        also=("MODEL.BACKBONE.PRETRAINED",),
        tests=PRETRAINED_TESTS,
    ),
    Case(
        "pretrained-sha256",
        "pretrained trunk file whose sha256 is not MODEL.BACKBONE.PRETRAINED_SHA256",
        lambda h: (
            TINY
            + _pretrained(os.path.join(h, "evil.pth"))
            + ["MODEL.BACKBONE.PRETRAINED_SHA256", "ab" * 32]
            + _out(h)
        ),
        "but MODEL.BACKBONE.PRETRAINED_SHA256 expects",
        tests=PRETRAINED_TESTS,
    ),
]
