"""Artifact layout, shared by the controller and the job.

An artifact root holds one folder per label named by its slug. A job writes into a
temporary sibling (``.tmp-<slug>-<token>``), writes the completion marker last, then
renames the folder into place: a folder under its final name is complete, and the
marker inside it is what a single-target check looks for.
"""

from __future__ import annotations

MARKER = "_COMPLETE"
METADATA = "metadata.json"
NATIVE_MODEL = "model.txt"  # LightGBM model string, for every LightGBM engine
SPARK_MODEL = "spark-model"  # Spark ML pipeline model, for Spark engines
TMP_PREFIX = ".tmp-"
FORMAT_VERSION = 1


def temp_name(slug: str, token: str) -> str:
    return f"{TMP_PREFIX}{slug}-{token}"


def is_temp_of(name: str, slug: str) -> bool:
    """Whether ``name`` is a temporary folder of the label with this slug."""
    return name.startswith(f"{TMP_PREFIX}{slug}-")


def is_final_name(name: str) -> bool:
    return not name.startswith(".") and not name.startswith("_")
