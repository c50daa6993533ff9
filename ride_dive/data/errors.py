"""Errors about the data a config points to, for users rather than for developers.

Both derive from ``ConfigError`` on purpose: every entry point (``tools/*.py``) already
prints a ``ConfigError`` as one ``ERROR:`` paragraph and exits with status 2, and the fix is
the same kind of act (repair the files, or point ``DATASETS.*`` elsewhere). Each message
names the file (and line, for list files) and says what to do.
"""

from ..config import ConfigError

__all__ = ["DatasetError", "BadImageError"]


class DatasetError(ConfigError):
    """Dataset files that exist but cannot be used: wrong format, bad lines, bad labels."""


class BadImageError(DatasetError):
    """An image file that cannot be decoded (see ``DATASETS.ON_BAD_IMAGE``)."""
