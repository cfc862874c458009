"""``tunekit train``: one run with a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tunekit.cli._options import console, device_options, run_options, script_options, script_spec


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
@device_options
@script_options
@click.pass_context
def train(
    ctx: click.Context,
    recipe_path: Path,
    script: Path,
    metric: str | None,
    max_steps: int | None,
    seed: int | None,
    **script_args: Any,
) -> None:
    """Train SCRIPT's module once with RECIPE and print the metric at the end.

    It trains on the recipe's devices, strategy and precision unless those options are given.
    """
    from tunekit.recipes import load_recipe
    from tunekit.training.fit import RunOptions, check_multi_device
    from tunekit.training.ranks import fit_once
    from tunekit.training.script import load_script

    typed, run_given = run_options(ctx, script_args)
    recipe = load_recipe(recipe_path)
    options = RunOptions.of_recipe(recipe.training, typed.accelerator).overridden(typed, run_given)
    check_multi_device(options)
    overrides = {k: v for k, v in (("max_steps", max_steps), ("seed", seed)) if v is not None}
    recipe = options.stamp(recipe.with_training(**overrides))
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
        result = fit_once(recipe, loaded, metric, options)
    line = f"{metric} = {result.value:.6g} after {result.steps} steps ({result.seconds:.1f}s)"
    expected = (recipe.result or {}).get("value")
    same_run = max_steps is None and seed is None and expected is not None
    if same_run:
        line += f"; the recipe's trial had {expected:.6g} (difference {result.value - expected:+.2e})"
    click.echo(line)
