"""Artifact layout, and which names Spark reads, shared by the controller and the job.

An artifact root holds one folder per label named by its slug. A job writes into a
temporary sibling (``.tmp-<slug>-<token>``), writes the completion marker last, then
renames the folder into place: a folder under its final name is complete, and the
marker inside it is what a single-target check looks for.
"""

from __future__ import annotations

import re

MARKER = "_COMPLETE"
METADATA = "metadata.json"
NATIVE_MODEL = "model.txt"  # LightGBM model string, for every LightGBM engine
SPARK_MODEL = "spark-model"  # Spark ML pipeline model, for Spark engines
TMP_PREFIX = ".tmp-"
FORMAT_VERSION = 1


def temp_token(pid: int, random_hex: str) -> str:
    return f"{pid}-{random_hex}"


def temp_name(slug: str, token: str) -> str:
    return f"{TMP_PREFIX}{slug}-{token}"


def is_temp_of(name: str, slug: str) -> bool:
    """Whether ``name`` is a temporary folder of exactly the label with this slug (a
    prefix match would also take the folders of a label whose slug starts alike)."""
    return re.fullmatch(rf"{re.escape(TMP_PREFIX + slug)}-\d+-[0-9a-f]{{10}}", name) is not None


def temp_pid(name: str) -> int | None:
    """The writer's process id in a temporary folder's name (``.tmp-<slug>-<pid>-<hex>``)."""
    found = re.fullmatch(rf"{re.escape(TMP_PREFIX)}.+-(\d+)-[0-9a-f]{{10}}", name)
    return int(found.group(1)) if found else None


def is_hidden(name: str) -> bool:
    """Hadoop's and Spark's hidden names: ``_`` or ``.`` first (markers, checksums, temporaries)."""
    return name.startswith(("_", "."))


def is_final_name(name: str) -> bool:
    return not is_hidden(name)


def spark_reads(name: str) -> bool:
    """Whether Spark reads a file of this name in a dataset's folder: not hidden, and not
    one Hadoop is still copying (``._COPYING_``)."""
    return not is_hidden(name) and not name.endswith("._COPYING_")
