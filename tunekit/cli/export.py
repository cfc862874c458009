"""``tunekit export``: a trial's recipe as YAML."""

from __future__ import annotations

from pathlib import Path

import click

from tunekit.cli._options import console, storage_option, study_option


@click.command()
@study_option(required=True)
@storage_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write [default: print to the terminal]. With --top K, files NAME-1.yaml ... NAME-K.yaml.",
)
@click.option("--trial", "which", default="best", show_default=True, metavar="best|N", help="Which trial to export.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Export the K best complete trials.")
def export(study_name: str, storage: str | None, output: Path | None, which: str, top: int | None) -> None:
    """Write the best (or a chosen) trial of a study as a versioned YAML recipe."""
    from tunekit.errors import BadInput
    from tunekit.storage import open_storage, resolve_url
    from tunekit.study import best_trial, open_study, ranked_trials

    study, settings = open_study(open_storage(resolve_url(storage)), study_name)
    if top is not None:
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
    texts = [_recipe_text(study, settings, t) for t in trials]
    if output is None:
        click.echo("---\n".join(texts), nl=False)
        return
    paths = (
        [output]
        if len(texts) == 1 and top is None
        else [output.with_name(f"{output.stem}-{i}{output.suffix or '.yaml'}") for i in range(1, len(texts) + 1)]
    )
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text)
        console(stderr=True).print(f"wrote {path}", highlight=False)


def _recipe_text(study: object, settings: object, trial: object) -> str:
    from tunekit.recipes import Recipe
    from tunekit.study import recipe_of

    recipe = Recipe.from_dict(recipe_of(trial), where=f"trial {trial.number}'s recipe")
    recipe.result = {
        "metric": settings.metric,
        "value": float(trial.value),
        "study": study.study_name,
        "trial": trial.number,
    }
    header = (
        f"tunekit recipe from study {study.study_name}, trial {trial.number} ({settings.metric}={trial.value:.6g}).\n"
        f"Reproduce: tunekit train THIS_FILE {settings.script.path}"
    )
    return recipe.to_yaml(header=header)
