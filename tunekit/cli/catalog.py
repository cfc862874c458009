"""``tunekit optimizers`` and ``tunekit schedules``: what the registries hold."""

from __future__ import annotations

from pathlib import Path

import click

from tunekit.cli._options import console, output_option, script_options, script_spec


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
@click.option(
    "--explain",
    "explain",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="SCRIPT",
    help="Show which group each parameter of SCRIPT's model goes to (Muon or AdamW) and why.",
)
@script_options
def optimizers(pattern: str, explain: Path | None, **script_args: object) -> None:
    """List the optimizer families (glob PATTERN) with defaults, searched ranges and LR ratio to AdamW."""
    from rich.table import Table

    from tunekit.search_spaces.catalog import list_families

    if explain is not None:
        explain_routing(explain, script_args)
        return

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


def explain_routing(script: Path, script_args: dict) -> None:
    """The table of ``--explain``: parameter, shape, role, Muon's group, whether it is in N, why."""
    from rich.table import Table

    from tunekit.training.param_groups import EMBEDDING, HEAD, HIDDEN, SMALL, classify_parameters
    from tunekit.training.quiet import silence_lightning
    from tunekit.training.script import load_script

    silence_lightning()
    model, _ = load_script(script_spec(script, script_args)).probe(None)
    table = Table(
        title=f"parameter routing: {script} (muon family; N as the laws count it)",
        caption="a tied head shares its embedding's tensor and is listed once, under the embedding's name",
    )
    for col in ("parameter", "shape", "role", "muon group", "in N", "why"):
        table.add_column(col)
    for r in classify_parameters(model):
        group = "Muon" if r.role == HIDDEN else "AdamW, no decay" if r.role == SMALL else "AdamW"
        in_n = "no" if r.role in (EMBEDDING, HEAD) else "yes"
        table.add_row(r.name, "x".join(map(str, r.param.shape)), r.role, group, in_n, r.why)
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
