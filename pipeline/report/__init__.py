"""The HTML report of what runs did: read (:mod:`.collect`), plot (:mod:`.plots`),
write one offline HTML file (:mod:`.page`)."""

from pipeline.report.collect import RunData, collect
from pipeline.report.page import render

__all__ = ["RunData", "collect", "render"]
