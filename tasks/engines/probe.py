"""The helper process that runs a model library's own checks for the controller.

``python -m tasks.engines.probe`` reads one JSON request on standard input
(``{"engine", "op": "kinds" | "check", "params", "n_features"}``) and writes one JSON
answer on standard output. The controller's main process must not start a library's
native threads before Luigi forks its tasks (see :mod:`tasks.engines.base`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tasks.engines.base import EngineParamError, EngineUnavailable, kind_name, one_line

TIMEOUT_S = 300


def ask(engine: str, request: dict[str, Any]) -> dict[str, Any]:
    """The helper's answer to ``request`` about ``engine``. It runs this interpreter with
    this process's module path, so packages found here (user engines too) are found
    there; a missing library is EngineUnavailable, a bad engine name EngineParamError."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        proc = subprocess.run([sys.executable, "-m", "tasks.engines.probe"], input=json.dumps({"engine": engine, **request}),
                              capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise EngineUnavailable(f"engine {engine}: checking its parameters took over {TIMEOUT_S} s in a helper process: "
                                "rerun; if it persists, check that the library imports quickly here") from None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise EngineUnavailable(f"engine {engine}: the helper process that checks its parameters failed "
                                f"(exit {proc.returncode}): {one_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '')}")
    answer = json.loads(lines[-1])
    if "unavailable" in answer:
        raise EngineUnavailable(answer["unavailable"])
    if "refused" in answer:
        raise EngineParamError(answer["refused"])
    return answer


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """What the helper computes (library code runs here)."""
    from tasks.engines.registry import get_engine

    try:
        engine = get_engine(request["engine"])
        engine.check_modules()
        if request["op"] == "kinds":
            return {"kinds": {name: kind_name(kind) for name, kind in engine.library_kinds().items()}}
        return {"error": engine.library_check(request["params"], int(request["n_features"]))}
    except EngineParamError as exc:
        return {"refused": str(exc)}
    except EngineUnavailable as exc:
        return {"unavailable": str(exc)}


def main() -> int:
    result = answer(json.loads(sys.stdin.read()))
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
