"""spark-fanout: train many models in parallel with Spark and Luigi.

``luigi --module pipeline TrainAll`` (or ``RunScripts``) finds the tasks here, and this is
the command line's entry: it installs the command line's hooks (console lines, luigid's
proxy, quiet stops, the exit summary, MLflow logging) in its main process, and nothing
anywhere else (a notebook's entry is :mod:`pipeline.api`).
"""
# ruff: noqa: E402 - the package's defaults go into Luigi's configuration before anything else loads

from pipeline import defaults

defaults.install()  # [retcode] and the other defaults hold from any folder, user files still win

from pipeline.runner import controller

controller.install_command_line()  # before Luigi parses parameters and logs anything; only in `luigi`'s main process

# A process flag, not a Luigi hook: both entries (this one and pipeline.api) import the package
# and may fork a process per task, so model libraries' native threads must not start in the
# importing process (tasks/engines/base.py says why); their checks go to a helper process.
from tasks.engines.base import isolate_library_calls

isolate_library_calls()

from pipeline.flows.demo import MakeDemoData
from pipeline.flows.predict import Predict
from pipeline.flows.report import Report
from pipeline.flows.scripts import RunScript, RunScripts
from pipeline.flows.sweep import FeatureSweep
from pipeline.flows.train import TrainAll, TrainModel
from pipeline.flows.tune import TuneAll

__all__ = ["FeatureSweep", "MakeDemoData", "Predict", "Report", "RunScript", "RunScripts", "TrainAll", "TrainModel", "TuneAll"]
