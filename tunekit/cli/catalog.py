"""``tunekit optimizers`` and ``tunekit schedules``: what the registries hold."""

from __future__ import annotations

from pathlib import Path

import click

from tunekit.cli._options import console, output_option


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def _space(space: dict) -> str:
    return ", ".join(
        f"{name} {_fmt(tuple(spec.choices)) if hasattr(spec, 'choices') else f'[{_fmt(spec.low)}, {_fmt(spec.high)}]'}"
        for name, spec in space.items()
    )


@click.command()
@click.argument("pattern", default="*")
def optimizers(pattern: str) -> None:
    """List the optimizer families (glob PATTERN) with defaults, searched ranges and LR ratio to AdamW."""
    from rich.table import Table

    from tunekit.search_spaces.catalog import list_families

    table = Table(title="optimizer families ((default) = searched without --optimizers)", show_lines=True)
    for col in ("name", "description", "implementation", "defaults", "searched", "LR vs AdamW"):
        table.add_column(col)
    for f in list_families(pattern):
        ratio = f.lr_ratio
        table.add_row(
            f.name + ("\n[green](default)[/]" if f.in_default_search else ""),
            f"{f.description}\n[dim]{f.source}[/]",
            f.implementation,
            ", ".join(f"{k}={_fmt(v)}" for k, v in f.defaults.items()),
            _space(dict(f.space)),
            f"{ratio:g}x" if ratio is not None else "own scale",
        )
    console().print(table)


@click.command()
@click.argument("pattern", default="*")
@click.option("--plot", "plot_name", default=None, metavar="NAME", help="Draw this schedule's multiplier curve.")
@click.option(
    "--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Steps of the plotted budget."
)
@output_option("PNG file for --plot [default: a terminal plot].")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="K=V",
    help="Schedule parameter for --plot (repeatable), e.g. --param decay_fraction=0.3.",
)
def schedules(pattern: str, plot_name: str | None, steps: int, output: Path | None, params: tuple) -> None:
    """List the LR schedules (glob PATTERN) with parameters and sources, or --plot one."""
    from tunekit.search_spaces.catalog import get_schedule, list_schedules
    from tunekit.search_spaces.schedule_plots import plot_schedule
    from tunekit.training.script import parse_assignments

    if plot_name is not None:
        get_schedule(plot_name)
        values = parse_assignments(params, "--param")
        result = plot_schedule(plot_name, values, steps, path=output)
        if output is not None:
            click.echo(f"wrote {output}")
        else:
            click.echo(result)
        return
    from rich.table import Table

    table = Table(title="LR schedules (multipliers of the peak LR, stepped per optimizer step)", show_lines=True)
    for col in ("name", "description", "defaults", "searched", "source"):
        table.add_column(col)
    for s in list_schedules(pattern):
        table.add_row(
            s.name,
            s.description,
            ", ".join(f"{k}={_fmt(v)}" for k, v in s.defaults.items()),
            _space(dict(s.space)),
            s.source,
        )
    console().print(table)
