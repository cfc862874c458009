"""``tunekit train``: one run with a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tunekit.cli._options import accelerator_option, console, script_options, script_spec


@click.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--metric", default=None, help="Metric to report [default: the recipe's, else val_loss].")
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Override the recipe's budget (schedules scale with it).",
)
@click.option("--seed", type=int, default=None, help="Override the recipe's seed.")
@accelerator_option
@script_options
def train(
    recipe_path: Path,
    script: Path,
    metric: str | None,
    max_steps: int | None,
    seed: int | None,
    accelerator: str,
    **script_args: Any,
) -> None:
    """Train SCRIPT's module once with RECIPE and print the metric at the end."""
    from tunekit.recipes import load_recipe
    from tunekit.training.fit import RunOptions, run_fit
    from tunekit.training.script import load_script

    recipe = load_recipe(recipe_path)
    overrides = {k: v for k, v in (("max_steps", max_steps), ("seed", seed)) if v is not None}
    recipe = recipe.with_training(**overrides)
    metric = metric or (recipe.result or {}).get("metric") or "val_loss"
    spec = script_spec(script, script_args)
    loaded = load_script(spec)
    out = console()
    opt, sched = recipe.optimizer, recipe.schedule
    out.print(
        f"Training {script} with {opt.name} (lr {opt.lr:.3g}) and schedule {sched.name} "
        f"for {recipe.training.max_steps} steps.",
        highlight=False,
    )
    with out.status("training..."):
        result = run_fit(recipe, loaded, metric, options=RunOptions(accelerator))
    line = f"{metric} = {result.value:.6g} after {result.steps} steps ({result.seconds:.1f}s)"
    expected = (recipe.result or {}).get("value")
    same_run = max_steps is None and seed is None and expected is not None
    if same_run:
        line += f"; the recipe's trial had {expected:.6g} (difference {result.value - expected:+.2e})"
    click.echo(line)
