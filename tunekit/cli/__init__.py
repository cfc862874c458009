"""tunekit's command line: a lazily loading Click group, so ``tunekit --help`` imports nothing heavy.

Each command lives in its own module and imports torch, lightning and optuna only when it runs.
"""

from __future__ import annotations

import click

from tunekit import __version__
from tunekit.cli._group import LazyGroup

# name -> ("module:function", one-line help shown by `tunekit --help` without importing the module)
COMMANDS = {
    "search": ("tunekit.cli.search:search", "Run (or continue) a study on a model script."),
    "resume": ("tunekit.cli.search:resume", "Continue a study with the settings stored in it."),
    "show": ("tunekit.cli.inspect:show", "Trials, best recipe, and what was pruned or failed and why."),
    "studies": ("tunekit.cli.inspect:studies", "List the studies in the storage."),
    "report": ("tunekit.cli.report:report", "Draw a study's report: one HTML page with plots, or Markdown + PNGs."),
    "export": ("tunekit.cli.export:export", "Write a trial's recipe as YAML."),
    "train": ("tunekit.cli.train:train", "Train once with a recipe (reproduce a trial, or use a full budget)."),
    "optimizers": ("tunekit.cli.catalog:optimizers", "List the optimizer families with their defaults."),
    "schedules": ("tunekit.cli.catalog:schedules", "List the LR schedules, or plot one."),
    "predict": ("tunekit.cli.predict:predict", "Show the scaling-law LR and batch prediction; trains nothing."),
    "law": ("tunekit.cli.law:law", "Fit your own LR (and batch-size) law from tuned proxy studies."),
}


@click.group(
    cls=LazyGroup,
    commands_table=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="tunekit")
def main() -> None:
    """Optimizer and learning-rate-schedule search for PyTorch Lightning models.

    Quick start: tunekit search examples/charlm.py --trials 6 --max-steps 200
    """
