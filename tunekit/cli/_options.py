"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

storage_option = click.option(
    "--storage",
    envvar="TUNEKIT_STORAGE",
    default=None,
    metavar="URL",
    help="Optuna/SQLAlchemy storage URL [env TUNEKIT_STORAGE; default sqlite:///tunekit.db here].",
)


def study_option(required: bool) -> Callable:
    return click.option(
        "--study",
        "study_name",
        required=required,
        metavar="NAME",
        help="Study name" + ("." if required else " [default: the script's file stem]."),
    )


def script_options(fn: Callable) -> Callable:
    """--model/--data/--model-arg/--data-arg: how to build the script's classes."""
    for decorator in reversed(
        [
            click.option(
                "--model",
                default=None,
                metavar="CLASS",
                help="LightningModule class (when the script defines several).",
            ),
            click.option(
                "--data",
                default=None,
                metavar="CLASS",
                help="LightningDataModule class (when the script defines several).",
            ),
            click.option(
                "--model-arg",
                "model_args",
                multiple=True,
                metavar="K=V",
                help="Constructor argument of the module (repeatable).",
            ),
            click.option(
                "--data-arg",
                "data_args",
                multiple=True,
                metavar="K=V",
                help="Constructor argument of the DataModule (repeatable).",
            ),
        ]
    ):
        fn = decorator(fn)
    return fn


def output_option(help: str) -> Callable:
    """``-o/--output FILE``: where a command writes its YAML."""
    return click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help=help)


DEFAULT_MAX_STEPS = 200

accelerator_option = click.option(
    "--accelerator", default="auto", show_default=True, help="Lightning accelerator (cpu, gpu, auto)."
)


def device_options(fn: Callable) -> Callable:
    """--accelerator/--devices/--strategy/--precision: where each run trains (issue #11).

    Read them with ``run_options``; a study or recipe keeps the values of those not typed.
    """
    for decorator in reversed(
        [
            accelerator_option,
            click.option(
                "--devices", type=click.IntRange(min=1), default=1, show_default=True, help="Devices per trial."
            ),
            click.option(
                "--strategy",
                default="auto",
                show_default=True,
                help="Lightning strategy of a multi-device trial (ddp, fsdp, deepspeed, auto).",
            ),
            click.option(
                "--precision",
                default="32-true",
                show_default=True,
                help="Lightning precision (bf16-mixed, 16-mixed, 32-true, 64-true, ...); part of the experiment.",
            ),
        ]
    ):
        fn = decorator(fn)
    return fn


DEVICE_OPTIONS = ("accelerator", "devices", "strategy", "precision")


def run_options(ctx: click.Context, options: dict) -> tuple[Any, frozenset[str]]:
    """The validated ``RunOptions`` of the ``device_options`` values (taken out of ``options``), and
    the names of those the user typed."""
    from tunekit.training.fit import RunOptions

    values = {name: options.pop(name) for name in DEVICE_OPTIONS}
    typed = given_options(ctx)
    return RunOptions.parse(**values), frozenset(n for n in DEVICE_OPTIONS if f"--{n}" in typed)


max_steps_option = click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_STEPS,
    show_default=True,
    help="Optimizer steps per trial (the budget).",
)


def prior_option(fn: Callable) -> Callable:
    """--prior, its choices named from the law registry (importing it loads no torch)."""
    from tunekit.priors import DEFAULT_PRIOR, PRIOR_NAMES

    return click.option(
        "--prior",
        default=DEFAULT_PRIOR,
        show_default=True,
        help=f"Where LR ranges are centred: {', '.join(PRIOR_NAMES[:-1])}, none (plain wide ranges), or a "
        "law.yaml from 'tunekit law fit'. See it first with tunekit predict.",
    )(fn)


SCRIPT_OPTIONS = ("model", "data", "model_args", "data_args")


def script_spec(script: Any, options: dict) -> Any:
    """The ``ScriptSpec`` for a script argument; takes the ``script_options`` values out of ``options``."""
    from tunekit.training.script import ScriptSpec, parse_assignments

    model, data, model_args, data_args = (options.pop(name) for name in SCRIPT_OPTIONS)
    return ScriptSpec(
        str(script.resolve()),
        model,
        data,
        parse_assignments(model_args, "--model-arg"),
        parse_assignments(data_args, "--data-arg"),
    )


def storage_flag(url: str) -> str:
    """``--storage URL`` to repeat in a suggested command, or nothing for the default."""
    from tunekit.study.storage import DEFAULT_STORAGE

    return "" if url == DEFAULT_STORAGE else f" --storage {url}"


def given_options(ctx: click.Context) -> set[str]:
    """The options the user typed (or set through the environment), as ``--name`` strings."""
    given = set()
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
            given.update(o for o in param.opts if o.startswith("--"))
    return given


def console(**kwargs: Any) -> Any:
    """A rich console; off a terminal (CI, pipes) it is wide enough that tables are not cut."""
    from rich.console import Console

    out = Console(**kwargs)
    if not out.is_terminal and "width" not in kwargs:
        out = Console(width=160, **kwargs)
    return out
