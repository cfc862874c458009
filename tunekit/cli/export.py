"""``tunekit export``: a trial's recipe as YAML."""

from __future__ import annotations

from pathlib import Path

import click

from tunekit.cli._options import console, output_option, storage_option, study_option


@click.command()
@study_option(required=True)
@storage_option
@output_option("File to write [default: print to the terminal]. With --top K, files NAME-1.yaml ... NAME-K.yaml.")
@click.option("--trial", "which", default="best", show_default=True, metavar="best|N", help="Which trial to export.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Export the K best complete trials.")
@click.option(
    "--pareto",
    is_flag=True,
    help="Export the Pareto front of a search --also study (metric against cost), best metric first; "
    "files NAME-1.yaml ... like --top.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tunekit", "lightning"]),
    default="tunekit",
    show_default=True,
    help="tunekit recipe, or a LightningCLI config (trainer settings + the UseRecipe callback).",
)
def export(
    study_name: str, storage: str | None, output: Path | None, which: str, top: int | None, pareto: bool, fmt: str
) -> None:
    """Write the best (or a chosen) trial of a study as a versioned YAML recipe."""
    from tunekit.errors import BadInput
    from tunekit.study.objectives import pareto_front
    from tunekit.study.settings import best_trial, open_study, ranked_trials
    from tunekit.study.storage import open_storage, resolve_url

    study, settings = open_study(open_storage(resolve_url(storage)), study_name)
    if pareto:
        _check_pareto(study, settings)
        trials = pareto_front(study)[:top]
    elif top is not None:
        trials = ranked_trials(study)[:top]
    elif which == "best":
        best = best_trial(study)
        trials = [best] if best else []
    else:
        if not which.isdigit():
            raise BadInput(f"--trial must be 'best' or a trial number, got '{which}'.")
        trials = [t for t in study.get_trials(deepcopy=False) if t.number == int(which)]
        if not trials:
            raise BadInput(f"study '{study_name}' has no trial {which}; see tunekit show --study {study_name}.")
        if trials[0].state.name != "COMPLETE":
            raise BadInput(f"trial {which} is {trials[0].state.name}, not COMPLETE; export a complete trial.")
    if not trials:
        raise BadInput(f"study '{study_name}' has no complete trial yet; run tunekit resume --study {study_name}.")
    texts = [_recipe_text(study, settings, t, fmt) for t in trials]
    if output is None:
        click.echo("---\n".join(texts), nl=False)
        return
    paths = (
        [output]
        if len(texts) == 1 and top is None and not pareto
        else [output.with_name(f"{output.stem}-{i}{output.suffix or '.yaml'}") for i in range(1, len(texts) + 1)]
    )
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text)
        console(stderr=True).print(f"wrote {path}", highlight=False)


def _recipe_text(study: object, settings: object, trial: object, fmt: str) -> str:
    from dataclasses import replace

    from tunekit.recipes import Recipe
    from tunekit.study.objectives import cost_value, metric_value
    from tunekit.study.records import recipe_of

    result = {
        "metric": settings.metric,
        "value": float(metric_value(trial)),
        "study": study.study_name,
        "trial": trial.number,
    }
    if settings.also:  # the trial's cost in a search --also study
        result[settings.also] = float(cost_value(trial))
    recipe = replace(Recipe.from_dict(recipe_of(trial), where=f"trial {trial.number}'s recipe"), result=result)
    origin = f"study {study.study_name}, trial {trial.number} ({settings.metric}={metric_value(trial):.6g})"
    if fmt == "lightning":
        return _lightning_config(recipe, origin, settings.script)
    return recipe.to_yaml(
        header=f"tunekit recipe from {origin}.\nReproduce: tunekit train THIS_FILE {settings.script.path}"
    )


def _check_pareto(study: object, settings: object) -> None:
    """Raises BadInput when ``study`` has one objective (no Pareto front)."""
    from tunekit.errors import BadInput

    if not settings.also:
        raise BadInput(
            f"study '{study.study_name}' has one objective, so it has no Pareto front; "
            "search with --also seconds or --also peak_memory, or export --top K."
        )


def _lightning_config(recipe: object, origin: str, script: object) -> str:
    """A LightningCLI config that reproduces the trial when run alone (issue #15).

    The study's model and data arguments (the DataModule with the trial's batch size), in the form
    the study's ``--config`` used (flat, or ``class_path``/``init_args``); the trial's Trainer
    settings, from the same ``trial_settings`` every trial uses; the seed as ``seed_everything``.
    LightningCLI's own ``optimizer:``/``lr_scheduler:`` keys cannot express parameter groups (no
    decay on norms, Muon's split) and step schedulers per epoch, so the recipe travels whole in the
    ``UseRecipe`` callback instead.
    """
    import yaml

    from tunekit.training.fit import trial_settings

    t = recipe.training
    callbacks = [{"class_path": "tunekit.training.use_recipe.UseRecipe", "init_args": {"recipe": recipe.to_dict()}}]
    if recipe.schedule_free:
        callbacks.append({"class_path": "tunekit.training.callbacks.ScheduleFreeSwitch"})
    trainer = {k: v for k, v in trial_settings(recipe).items() if v is not None or k == "check_val_every_n_epoch"}
    trainer["callbacks"] = callbacks
    config = {"seed_everything": t.seed, "trainer": trainer}
    data_args = dict(script.data_args)
    if t.batch_size is not None:
        data_args["batch_size"] = t.batch_size
    for name, args in (("model", dict(script.model_args)), ("data", data_args)):
        class_path = script.class_paths.get(name)
        if class_path is not None:
            config[name] = {"class_path": class_path, "init_args": args}
        elif args:
            config[name] = args
    header = f"# LightningCLI config from {origin}.\n# Use: python {Path(script.path).name} fit --config THIS_FILE\n"
    if t.max_steps % max(1, t.max_steps // t.evaluations):
        header += (
            "# The trial validated once more after its last step: run validate on the final weights for its value.\n"
        )
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=100)
