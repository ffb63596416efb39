"""Run a model library's own parameter check without its log lines reaching the console.

LightGBM's native code writes ``[LightGBM] [Fatal] …`` straight to file descriptor 2
before it raises, and its Python side prints warnings; the controller turns the raised
error into its own one line instead. Lines captured that are not the library's (another
thread writing meanwhile) are written back.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def library_output_hidden(prefixes: tuple[str, ...]) -> Iterator[None]:
    """Hide output lines starting with one of ``prefixes`` (stdout and stderr, both at
    the Python and the file-descriptor level) while the block runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    python_out = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            with contextlib.redirect_stdout(python_out):
                yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            native = captured.read().decode("utf-8", errors="replace")
            for text, stream in ((native, sys.stderr), (python_out.getvalue(), sys.stdout)):
                kept = [line for line in text.splitlines(keepends=True) if line.strip() and not line.startswith(prefixes)]
                if kept:
                    stream.write("".join(kept))
                    stream.flush()
