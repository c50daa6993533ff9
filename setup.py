"""ride_dive: long-tailed image recognition (RIDE, DiVE, RIDE-DiVE, decoupling) in PyTorch."""

from setuptools import find_packages, setup

setup(
    name="ride_dive",
    version="0.1.0",
    description="RIDE, DiVE, RIDE-DiVE and decoupling baselines for long-tailed recognition",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # The library only: benchmarks/ (benchmark and model zoo maintainer code), tools/ and
    # tests/ stay in the repository and are not installed.
    packages=find_packages(include=["ride_dive", "ride_dive.*"]),
    # The model zoo's configs and manifest: in the source tree these are symbolic links to
    # the top-level configs/ and model_zoo/manifest.json; a wheel carries copies.
    package_data={"ride_dive.model_zoo": ["manifest.json", "configs/*.yaml", "configs/*/*.yaml"]},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy>=1.22",
        "pyyaml>=5.1",
        "tensorboard>=2.10",
        "fvcore>=0.1.5",
        # utils/file_io.py uses its PathManager directly (fvcore brings it too).
        "iopath>=0.1.7",
        "pillow>=9.0",
    ],
    extras_require={
        # timm: the tests build timm's tiny test models (TimmBackbone, RIDETimmBackbone).
        "tests": ["pytest>=7", "ruff>=0.4", "timm>=1.0"],
        "plots": ["matplotlib>=3.5"],
        # Pretrained trunks from timm (TimmBackbone, RIDETimmBackbone); torchvision's need
        # nothing extra.
        "timm": ["timm>=1.0"],
    },
    entry_points={"console_scripts": []},
    license="MIT",
)
