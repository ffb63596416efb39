"""Size limits of the code in pipeline/ and tasks/: every function under 40 lines, no class with more
than 20 methods. Lines run from a function's ``def`` to its last line (docstring, nested
functions and classes included); methods are the functions defined in a class's own body.

    python .ci/limits.py [folder ...]      (default: pipeline; CI passes pipeline tasks)

Prints the longest functions and the classes with most methods; exits 1 past a limit.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FUNCTION_LINES = 39
MAX_METHODS = 20


def measure(folder: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(lines, where) of every function and (methods, where) of every class under ``folder``."""
    functions, classes = [], []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{path}:{node.lineno} {node.name}"))
            elif isinstance(node, ast.ClassDef):
                methods = sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in node.body)
                classes.append((methods, f"{path}:{node.lineno} {node.name}"))
    return sorted(functions, reverse=True), sorted(classes, reverse=True)


def main(folders: list[str]) -> int:
    functions, classes = [], []
    for folder in folders or ["pipeline"]:
        found = measure(Path(folder))
        functions += found[0]
        classes += found[1]
    functions.sort(reverse=True)
    classes.sort(reverse=True)
    print("longest functions (lines):", "; ".join(f"{n} {w}" for n, w in functions[:3]))
    print("most methods (per class):", "; ".join(f"{n} {w}" for n, w in classes[:3]))
    over = [f"function {w}: {n} lines (at most {MAX_FUNCTION_LINES})" for n, w in functions if n > MAX_FUNCTION_LINES]
    over += [f"class {w}: {n} methods (at most {MAX_METHODS})" for n, w in classes if n > MAX_METHODS]
    for line in over:
        print(f"too big: {line}: split it by concern")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
