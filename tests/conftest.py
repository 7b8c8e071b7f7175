"""Shared fixtures. Other concerns add fixtures in their own test files."""
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def c_engine():
    """build/libml_lib.so, (re)built with `make core-lib` and loaded.

    A missing or broken C engine fails the tests that use it; the comparison
    with the reference is never skipped.
    """
    from ml_lib import cengine

    r = subprocess.run(["make", "-s", "-C", str(TOP), "core-lib"], capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"`make core-lib` failed, no C engine to compare with:\n{r.stdout}{r.stderr}")
    return cengine.load(cengine.DEFAULT_LIB)
