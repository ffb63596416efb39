"""Bad data found by Spark inside a job, said in one line.

The controller reads the footer of every part file of a local dataset, but of a remote
one only the first and last: a damaged part file in between is found by Spark, as a
``Py4JJavaError`` whose first line says nothing ("An error occurred while calling
o30.collectToPython") and whose cause is deep in the Java stack trace.
"""

from __future__ import annotations

import re

# parquet-mr's ParquetFileReader.readFooter: "<path> is not a Parquet file. Expected magic number at tail, ..."
_NOT_PARQUET = re.compile(r"RuntimeException: (\S+) is not a Parquet file\.?( Expected magic number at tail)?")


def damaged_parquet(text: str) -> str | None:
    """The one line for a part file Spark could not read as Parquet, found in an
    exception's text; ``None`` when the text is about something else."""
    found = _NOT_PARQUET.search(text)
    if found is None:
        return None
    cut = " (its end is missing: a write cut short?)" if found.group(2) else ""
    return f"dataset part file {found.group(1)} is not a Parquet file{cut}: rewrite the dataset, or remove the file"
