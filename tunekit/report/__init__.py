"""``tunekit report``: what a study found, drawn (issue #12).

- ``data``: the study read once into a ``ReportData`` (the only module that knows the storage layout);
- ``figures`` (plotly) and ``pngs`` (matplotlib): the drawings;
- ``html`` and ``markdown``: the writers, chosen by name from :data:`WRITERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def _html(d, path: Path, top: int) -> list[Path]:
    from tunekit.report.html import write_html

    return write_html(d, path, top)


def _markdown(d, path: Path, top: int) -> list[Path]:
    import importlib.util

    from tunekit.errors import BadInput

    if importlib.util.find_spec("matplotlib") is None:
        raise BadInput(
            "--format md draws its figures with matplotlib, which is not installed; "
            "pip install 'tunekit[plot]', or use --format html."
        )
    from tunekit.report.markdown import write_markdown

    return write_markdown(d, path, top)


# --format name -> (writer(data, path, top) -> files written, default file suffix)
WRITERS: dict[str, tuple[Callable[..., list[Path]], str]] = {"html": (_html, ".html"), "md": (_markdown, ".md")}


def write_report(storage_url: str, study_name: str, path: Path, fmt: str, top: int = 8) -> list[Path]:
    """Read the study and write its report in format ``fmt`` (a key of :data:`WRITERS`) to ``path``.

    Returns:
        The files written (the report, and for ``md`` its PNG figures beside it).

    Raises:
        BadInput: no such study, not a tunekit study, no complete trial, or ``path``'s folder is missing.
    """
    from tunekit.errors import BadInput
    from tunekit.report.data import load_report_data

    if not path.parent.exists():
        raise BadInput(f"folder '{path.parent}' for the report does not exist; create it or choose another -o.")
    data = load_report_data(storage_url, study_name)
    writer, _ = WRITERS[fmt]
    return writer(data, path, top)
