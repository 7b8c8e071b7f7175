# SPDX-License-Identifier: GPL-2.0
"""User-facing errors of the ml_lib command-line tools.

A :class:`UserError` is a problem with what the user gave us (a file, an
option, a model the toolchain cannot handle).  The CLIs print its message as
one line and exit with status 2; a traceback is shown only with ``--debug``.
Anything else that escapes is a bug in ml_lib and keeps its traceback.
"""

import sys

EXIT_USAGE = 2


class UserError(Exception):
    """An error caused by user input; ``str(err)`` is the one-line message."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str):
        # One line only: callers may build messages from file contents.
        super().__init__(" ".join(str(message).split()))


def run_cli(prog: str, func, argv, debug: bool) -> int:
    """Call ``func(argv)`` and turn a :class:`UserError` into a one-line error.

    Returns the exit status (0 on success, 2 on a user error).  With
    ``debug`` the exception propagates so its traceback is printed.
    """
    try:
        rc = func(argv)
    except UserError as err:
        if debug:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0 if rc is None else rc
