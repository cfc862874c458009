"""``tunekit train``: one run with a recipe."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from tunekit.cli._options import (
    console,
    device_options,
    run_options,
    script_options,
    script_spec,
    storage_option,
)


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
@storage_option
@click.option(
    "--fresh",
    is_flag=True,
    help="With a longer --max-steps, train from step 0 even when the recipe's WSD trial kept its stable phase.",
)
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
    storage: str | None,
    fresh: bool,
    **script_args: Any,
) -> None:
    """Train SCRIPT's module once with RECIPE and print the metric at the end.

    It trains on the recipe's devices, strategy and precision unless those options are given. A
    WSD recipe exported from a study whose trial kept its stable phase (WSD-S) continues from it
    with a longer --max-steps, instead of starting again (unless --fresh).
    """
    from tunekit.recipes import load_recipe
    from tunekit.training.fit import RunOptions, check_multi_device
    from tunekit.training.ranks import fit_once
    from tunekit.training.script import load_script

    typed, run_given = run_options(ctx, script_args)
    recipe = original = load_recipe(recipe_path)
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
    with tempfile.TemporaryDirectory() as scratch, out.status("training..."):
        start = (
            None
            if fresh or max_steps is None or options.devices > 1
            else _stable_start(storage, original, max_steps, scratch)
        )
        if start is None:
            result = fit_once(recipe, loaded, metric, options)
        else:
            from tunekit.training.stable_resume import continue_stable_phase

            checkpoint, step, trial = start
            out.print(f"Continuing trial {trial}'s stable phase from step {step} (WSD-S; --fresh to start over).")
            result = continue_stable_phase(recipe, loaded, metric, checkpoint, step, options)
    line = f"{metric} = {result.value:.6g} after {result.steps} steps ({result.seconds:.1f}s)"
    expected = (recipe.result or {}).get("value")
    same_run = max_steps is None and seed is None and expected is not None
    if same_run:
        line += f"; the recipe's trial had {expected:.6g} (difference {result.value - expected:+.2e})"
    click.echo(line)


def _stable_start(storage: str | None, recipe: Any, max_steps: int, scratch: str) -> Any:
    from tunekit.study.stable_states import stable_start
    from tunekit.study.storage import resolve_url

    return stable_start(resolve_url(storage), recipe, max_steps, Path(scratch))
