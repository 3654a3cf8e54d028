"""TVM's C++ logs (e.g. LLVM's "Set native vector bits to be 128 for thumbv7em") go straight
to file descriptor 2. `native_stderr` collects them while TVM builds, so they reach the user
only when asked for (`tvmc compile -v`)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Yield a list that holds, after the block, the lines written to fd 2 inside it.

    Python's own `sys.stderr` (progress lines, tracebacks) keeps writing to the real stderr."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    with tempfile.TemporaryFile() as sink:
        sys.stderr = open(saved, "w", buffering=1, closefd=False)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = python_stderr
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())
