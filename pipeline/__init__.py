"""spark-fanout: train many models in parallel with Spark and Luigi.

``luigi --module pipeline TrainAll`` (or ``RunScripts``) finds the tasks here.
"""
# ruff: noqa: E402 - the package's defaults go into Luigi's configuration before anything else loads

from pipeline import defaults

defaults.install()  # [retcode] and the other defaults hold from any folder, user files still win

from tasks.engines.base import isolate_library_calls

# The controller forks a process per Luigi task: model libraries' native threads must not
# start in its main process (tasks/engines/base.py says why).
isolate_library_calls()

from pipeline.flows.demo import MakeDemoData
from pipeline.flows.predict import Predict
from pipeline.flows.report import Report
from pipeline.flows.scripts import RunScript, RunScripts
from pipeline.flows.sweep import FeatureSweep
from pipeline.flows.train import TrainAll, TrainModel
from pipeline.flows.tune import TuneAll

__all__ = ["FeatureSweep", "MakeDemoData", "Predict", "Report", "RunScript", "RunScripts", "TrainAll", "TrainModel", "TuneAll"]
