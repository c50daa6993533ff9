"""The shipped zoo: manifest entries consistent with their configs, MODEL_ZOO.md generated
from the manifest, and configs + manifest inside a built wheel."""

import os
import re
import subprocess
import sys
import zipfile

import pytest

from benchmarks.publish import render_model_zoo_md
from ride_dive import model_zoo
from ride_dive.config import get_cfg
from ride_dive.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REQUIRED = [
    "ce_r32",
    "bsce_r32",
    "dive_r32",
    "ride_4e_r32",
    "ride_dive_4e_r32",
    "ride_dive_4e_r32_router",
]


def test_shipped_manifest_has_the_required_fashion_mnist_entries():
    zoo = model_zoo.load_manifest()
    for stem in REQUIRED:
        assert f"FashionMNIST-LT/{stem}.yaml" in zoo
    assert zoo.base_url.startswith("https://")


@pytest.mark.parametrize("entry", model_zoo.list_models(), ids=lambda e: e.name)
def test_every_entry_builds_from_its_packaged_config(entry):
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(entry.name))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.ROUTER.TRAIN", "False"])
    model = build_model(cfg, class_counts=entry.class_counts)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert params == pytest.approx(entry.params, abs=1e-4)
    assert entry.file.startswith(os.path.splitext(entry.name)[0] + "-" + entry.sha256[:8])
    for key in ("top1", "many", "medium", "few", "gmacs"):
        assert isinstance(entry.metrics.get(key), (int, float)), key


def test_model_zoo_md_is_generated_from_the_manifest():
    with open(os.path.join(REPO, "MODEL_ZOO.md"), encoding="utf-8") as f:
        text = f.read()
    command = re.search(r"Last published with: `(.*?)`", text).group(1)
    assert render_model_zoo_md(model_zoo.load_manifest(), command) == text


def test_wheel_carries_configs_and_manifest(tmp_path):
    """Build the wheel, install it elsewhere and use the zoo without the repository."""
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            REPO,
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("ride_dive-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ride_dive/model_zoo/manifest.json" in names
    assert "ride_dive/model_zoo/configs/FashionMNIST-LT/ride_dive_4e_r32.yaml" in names
    assert "ride_dive/model_zoo/configs/Base-FashionMNIST-LT.yaml" in names
    # The library only: no benchmark, tool or test code.
    assert all(n.startswith(("ride_dive/", "ride_dive-")) for n in names), sorted(
        {n.split("/")[0] for n in names}
    )
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:  # a wheel is a zip laid out as site-packages
        z.extractall(site)
    code = (
        "import ride_dive, sys; from ride_dive import model_zoo; "
        "assert ride_dive.__file__.startswith(sys.argv[1]), ride_dive.__file__; "
        "cfg = model_zoo.get_config('FashionMNIST-LT/ride_dive_4e_r32.yaml'); "
        "print(cfg.MODEL.RIDE.NUM_EXPERTS, len(model_zoo.list_models()))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(site)],
        cwd=str(tmp_path),
        env=dict(os.environ, PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["4", str(len(model_zoo.list_models()))]
