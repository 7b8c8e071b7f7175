# SPDX-License-Identifier: GPL-2.0
"""User-facing errors of the ml_lib command-line tools.

A :class:`UserError` is a problem with what the user gave us (a file, an
option, a model the toolchain cannot handle).  The CLIs print its message as
one line and exit with status 2; a traceback is shown only with ``--debug``.
Anything else that escapes is a bug in ml_lib and keeps its traceback.
"""

import argparse
import sys

EXIT_USAGE = 2


class UserError(Exception):
    """An error caused by user input; ``str(err)`` is the one-line message."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str):
        # One line only: callers may build messages from file contents.
        super().__init__(" ".join(str(message).split()))


class UsageError(UserError):
    """A command line argparse refused (unknown option, bad choice, missing argument)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the ml_lib CLIs: a bad command line is one line, not the usage.

    argparse prints the whole usage and the error, then exits.  Here the error
    becomes a :class:`UsageError` with a pointer to ``--help``, which
    :func:`run_cli` prints as ``<prog>: error: <message> (see <prog> --help)``
    and exit 2 like any other user error.  ``--help`` itself is unchanged.
    """

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def first_line(e: BaseException) -> str:
    """The first non-blank line of an exception's message, else its type's
    name: libraries' messages run over many lines, or are blank."""
    return next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)


def _os_message(err: OSError) -> str:
    """One line for a file-system error: the path and the system's reason."""
    where = err.filename if err.filename is not None else ""
    if err.filename2 is not None:
        where = f"{where} -> {err.filename2}"
    reason = err.strerror or str(err)
    return f"{where}: {reason}" if where else reason


def run_cli(prog: str, func, argv, debug: bool, quiet_logs: bool = True) -> int:
    """Call ``func(argv)`` and turn a user's error into one line and exit 2.

    User errors are :class:`UserError` and :class:`OSError` (a path that
    cannot be read or written: missing, a directory, read-only, no
    permission). Ctrl-C exits 130 with one line. Without ``debug``, Python
    warnings from the libraries (torch, numpy) are silenced so that an
    error stays one line, and so is logging (torch logs whole graphs and
    tracebacks when it cannot export a model) unless ``quiet_logs`` is
    false, for a tool whose log is its output; with ``debug`` they and the
    traceback are shown, and the exit status is the same. Anything else is
    a bug in ml_lib and keeps its traceback.
    """
    import logging
    import traceback
    import warnings

    previous = logging.root.manager.disable
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.simplefilter("ignore")
                if quiet_logs:
                    logging.disable(logging.CRITICAL)
            rc = func(argv)
    except (UserError, OSError) as err:
        if debug:
            traceback.print_exc()
        msg = str(err) if isinstance(err, UserError) else _os_message(err)
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    finally:
        logging.disable(previous)
    return 0 if rc is None else rc
