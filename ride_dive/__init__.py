"""ride_dive: long-tailed image recognition (RIDE, DiVE, RIDE-DiVE, decoupling) in PyTorch."""

__version__ = "0.1.0"
