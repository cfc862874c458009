"""``tunekit report``: a study's report with plots, as one HTML file or Markdown plus PNGs (issue #12)."""

from __future__ import annotations

from pathlib import Path

import click

from tunekit.cli._options import console, output_option, storage_option, study_option


@click.command()
@study_option(required=True)
@storage_option
@output_option("File to write [default: report.html, or report.md with --format md].")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    default="html",
    show_default=True,
    help="html: one self-contained page (opens offline); md: Markdown with PNG figures beside it.",
)
@click.option(
    "--top", type=click.IntRange(min=1), default=8, show_default=True, help="Learning curves of the K best trials."
)
def report(study_name: str, storage: str | None, output: Path | None, fmt: str, top: int) -> None:
    """Draw what a study found: history, families x schedules, LR against the prior, learning curves,
    importances, and what was pruned or failed."""
    from tunekit.report import WRITERS, write_report
    from tunekit.study.storage import resolve_url
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    path = output or Path("report" + WRITERS[fmt][1])
    written = write_report(resolve_url(storage), study_name, path, fmt, top)
    out = console(stderr=True)
    out.print(
        f"wrote {written[0]}" + (f" and {len(written) - 1} figures beside it" if len(written) > 1 else ""),
        highlight=False,
    )
