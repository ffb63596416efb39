"""Importing the package registers nothing on Luigi; its two entry points (the ``luigi``
command line through ``pipeline/__init__.py``, the notebook API) register what they need."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

# Reads Luigi's registry of event callbacks (``Task._event_callbacks``, Luigi 3.8.1) and the
# hooks the command line replaces, in a fresh interpreter; prints them as JSON.
PROBE = """
import json, sys
{setup}
import luigi
import luigi.interface
before = luigi.interface._WorkerSchedulerFactory.create_remote_scheduler
import pipeline, pipeline.api, pipeline.flows.predict, pipeline.flows.sweep, pipeline.flows.tune
{after}
callbacks = {{f"{{cls.__module__}}.{{cls.__name__}}": {{str(event): sorted(f"{{f.__module__}}.{{f.__name__}}" for f in fs)
              for event, fs in events.items() if fs}} for cls, events in luigi.Task._event_callbacks.items()}}
print(json.dumps({{"callbacks": callbacks,
                  "trigger_event_wrapped": getattr(luigi.Task.trigger_event, "wrapped_by_fanout", False),
                  "excepthook_replaced": sys.excepthook is not sys.__excepthook__,
                  "scheduler_factory_replaced": luigi.interface._WorkerSchedulerFactory.create_remote_scheduler is not before}}))
"""


def _probe(setup: str = "", after: str = "") -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup, after=after)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_every_module_registers_nothing_on_luigi():
    seen = _probe()
    assert seen == {"callbacks": {}, "trigger_event_wrapped": False, "excepthook_replaced": False,
                    "scheduler_factory_replaced": False}


def test_the_command_line_entry_registers_its_handlers():
    # What `luigi --module pipeline` is to the package: a main process whose argv[0] is luigi.
    seen = _probe(setup="sys.argv[0] = 'luigi'")
    handlers = seen["callbacks"]["luigi.task.Task"]
    assert handlers["event.core.success"] == ["pipeline.console._on_success", "pipeline.tracking._after_job"]
    assert handlers["event.core.failure"] == ["pipeline.console._on_failure", "pipeline.tracking._after_job"]
    assert handlers["event.core.start"] == ["pipeline.console._on_start"]
    assert seen["trigger_event_wrapped"] and seen["excepthook_replaced"] and seen["scheduler_factory_replaced"]


def test_the_notebook_api_registers_mlflow_logging_when_it_runs(tmp_path):
    # A run whose planning refuses at once (no such dataset) still goes through the API's entry.
    after = (f"try:\n    pipeline.api.train_all(data={str(tmp_path / 'missing.parquet')!r}, "
             f"models={str(tmp_path / 'm')!r}, log_dir={str(tmp_path / 'logs')!r}, workers=1, progress=False)\n"
             "except Exception:\n    pass")
    seen = _probe(after=after)
    handlers = seen["callbacks"]["luigi.task.Task"]
    assert handlers == {"event.core.success": ["pipeline.tracking._after_job"],
                        "event.core.failure": ["pipeline.tracking._after_job"]}
    assert not seen["trigger_event_wrapped"] and not seen["excepthook_replaced"]
