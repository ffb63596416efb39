"""Job-side helper for user scripts fanned out by ``RunScripts``.

Spark's DataFrame writers commit an output folder by writing ``_SUCCESS`` last, and the
controller moves a job's temporary output into place only once that marker is there.
A script whose output is not a DataFrame (a model file, a report) marks it done itself::

    from tasks.outputs import mark_success
    ...write files under sys.argv[...] (the job's {output})...
    mark_success(spark, output_uri)

The marker goes through Hadoop's FileSystem API for non-local URIs, so it works on HDFS
in cluster mode with no client of the script's own.
"""

from __future__ import annotations

from typing import Any

from tasks.artifact_writer import _HadoopFs, _LocalFs

SUCCESS = "_SUCCESS"


def _fs_for(spark: Any, uri: str) -> Any:
    if uri.startswith("file://"):
        return _LocalFs(uri)
    if "://" not in uri:  # a plain local path, as Spark also accepts
        return _LocalFs("file://" + uri)
    return _HadoopFs(spark, uri)


def mark_success(spark: Any, output_uri: str) -> str:
    """Write an empty ``_SUCCESS`` into the folder ``output_uri`` (created if missing);
    returns the marker's path. ``spark`` may be ``None`` for local paths."""
    fs = _fs_for(spark, output_uri)
    fs.mkdirs(fs.path())
    marker = fs.path(SUCCESS)
    fs.write(marker, b"")
    return marker
