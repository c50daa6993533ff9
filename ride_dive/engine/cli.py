"""What the command-line tools do with an expected user error: one paragraph, exit status 2.

Bad configs, missing or unreadable files, unsafe checkpoints and NaN losses are the user's
to fix, so they get the message alone; anything else is a bug and keeps its traceback.
"""

import sys
from typing import Any, Callable, Sequence, Type

from ..checkpoint import CheckpointError, CheckpointMismatchError
from ..config import ConfigError

__all__ = ["EXIT_USER_ERROR", "USER_ERRORS", "run_tool"]

USER_ERRORS = (
    ConfigError,
    CheckpointError,
    CheckpointMismatchError,
    FileNotFoundError,
    FloatingPointError,
)
EXIT_USER_ERROR = 2


def run_tool(
    main: Callable[[Any], Any], args: Any, extra_errors: Sequence[Type[BaseException]] = ()
) -> int:
    """``main(args)``; a user error (or one of ``extra_errors``) is printed as ``ERROR: ...``
    on stderr and gives exit status 2, success gives 0."""
    try:
        main(args)
    except USER_ERRORS + tuple(extra_errors) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0
