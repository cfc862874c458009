"""A tuned study as data for ``tunekit law fit``: its complete trials as (value, LR, batch, D) points.

Lives in the study layer because it reads trial records; the fitting itself is pure math in
``tunekit.priors._fit``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.priors._fit import StudyTrials, TrialPoint
from tunekit.search_spaces.catalog import get_family
from tunekit.study.objectives import metric_value
from tunekit.study.records import recipe_of


def read_study(study: Any, settings: Any, family: str | None = None) -> StudyTrials:
    """The complete trials of a tunekit study, with AdamW-equivalent LRs and each trial's D.

    N and tokens per sample come from the prior record stored with the study (every prior,
    ``none`` included, records them); older studies are measured from their script.

    Raises:
        BadInput: the script of an older study cannot be measured.
    """
    record = settings.prior or {}
    n_params = record.get("n_params")
    per_sample = record.get("tokens_per_sample")
    sequence = "tokens" in record or per_sample is not None
    default_batch = record.get("batch_size")
    if n_params is None or ("samples" not in record and not sequence):
        m = _measure_study(settings)
        n_params, default_batch = m.n_params, m.batch_size
        per_sample, sequence = m.tokens_per_sample, m.sequence
    points, skipped = [], 0
    for t in study.get_trials(deepcopy=False):
        recipe = recipe_of(t)
        if t.state.name != "COMPLETE" or not recipe or metric_value(t) is None or not math.isfinite(metric_value(t)):
            continue
        fam = get_family(recipe["optimizer"]["name"])
        if fam.lr_ratio is None or (family is not None and fam.name != family):
            skipped += 1
            continue
        training = recipe["training"]
        batch = (training.get("batch_size") or default_batch or 1) * training.get("accumulate_grad_batches", 1)
        batch_units = batch * (per_sample if sequence else 1.0)
        points.append(
            TrialPoint(
                float(metric_value(t)),  # the metric, also in a search --also study
                recipe["optimizer"]["lr"] / fam.lr_ratio,
                float(batch_units),
                float(training["max_steps"] * batch_units),
            )
        )
    return StudyTrials(
        study.study_name,
        float(n_params),
        "tokens" if sequence else "samples",
        settings.direction == "minimize",
        points,
        skipped,
    )


def _measure_study(settings: Any) -> Any:
    from tunekit.priors._measure import measure
    from tunekit.training.script import load_script

    if not Path(settings.script.path).is_file():
        raise BadInput(
            f"the study's script '{settings.script.path}' is gone and the study has no measured N; put the script back."
        )
    loaded = load_script(settings.script)
    return measure(loaded, settings.space.max_steps, loaded.default_batch_size)
