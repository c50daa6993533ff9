"""Logging set-up: console on the main process, plus a log file in OUTPUT_DIR."""

import logging
import os
import sys

from .run_dir import RunDir


def setup_logger(output_dir: str = "", rank: int = 0, name: str = "ride_dive") -> logging.Logger:
    """Configure the ``ride_dive`` logger once; other ranks only log warnings."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    fmt = logging.Formatter("[%(asctime)s %(name)s] %(message)s", datefmt="%m/%d %H:%M:%S")
    console = logging.StreamHandler(stream=sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if output_dir and rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        file_handler = logging.FileHandler(RunDir(output_dir).log)
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger
