"""A folder's report in every format: Markdown and JSON (``tables``) and HTML (``html``)."""
from __future__ import annotations

from pathlib import Path

from edgekit.core.record import atomic_write_text
from edgekit.measure import html
from edgekit.measure.tables import Report, build, collect, markdown, to_json


def render(rep: Report, fmt: str) -> str:
    """``md``, ``json`` or ``html``."""
    if fmt == "json":
        return to_json(rep)
    if fmt == "html":
        return html.render(rep)
    return markdown(rep)


def write_reports(folder: Path, title: str = "edgekit report") -> Report:
    """Write report.md, report.json and report.html of every record in ``folder``; return the report.

    Each record is checked against its file (``collect(check=True)``): a row the record cannot vouch
    for shows ❗ here too, as in ``edgekit report``. ``title`` names the command's run; a folder that
    holds several models is titled after the folder (and has a model column)."""
    folder = Path(folder)
    rep = build(collect(folder, check=True), title=title)
    if rep.model_column:  # the folder holds several models: the page is the folder's, not one model's
        rep.title = f"edgekit report: {folder} ({len(rep.models)} models)"
    for fmt in ("md", "json", "html"):
        atomic_write_text(folder / f"report.{fmt}", render(rep, fmt))
    return rep


def report(folder: str | Path, fmt: str = "md") -> str:
    """The report of every record in ``folder`` as Markdown (``md``), ``json`` or ``html`` text."""
    from edgekit.build.install import recover

    recover(Path(folder))  # what every reader does first: finish committed installs, drop dead ones
    return render(build(collect(Path(folder), check=True), title=f"edgekit report: {folder}"), fmt)
