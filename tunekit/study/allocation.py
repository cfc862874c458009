"""Spend a study's trials where the evidence points (issue #14): successive rejection of families.

Every family in the space first runs its predicted point (``coordination.enqueue_next_prediction``);
nothing is allocated before each of them has finished, so no family is judged unseen. From then on
each new trial is queued with its family fixed (TPE samples the family's own parameters):

- a family survives while its best final value is within ``SEED_SPREAD`` of the leader's (a
  family with no complete trial has shown nothing and is behind); a dropped family gets no more
  trials, and the drop is recorded on the study (``records.DROPPED_ATTR``) so the live view and
  the summary say so, naming the families the user listed in ``--optimizers``;
- among the survivors the next trial goes to the one with the fewest trials per weight, the
  leader weighing ``LEADER_WEIGHT``: the leader gets twice the trials of each challenger that is
  still within the spread (successive rejection in the manner of Audibert & Bubeck 2010, "Best Arm
  Identification in Multi-Armed Bandits", with the seed-to-seed spread as the margin).

What the allocated trial runs: the family's best trial so far with its learning rate moved by
the next of ``LR_STEPS`` not tried yet (a line search on the LR around the family's best, re-centred
whenever a new best appears); when those are used up, only the family is fixed and TPE samples the
rest (``Study.enqueue_trial`` with partial parameters). Why not TPE at once: a family that wins its
predicted point has one trial, so TPE's model of its own parameters is a random draw (on the
tabular benchmark five of seven such draws were pruned), while the LR is the parameter that
matters most at a fixed budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from tunekit.study.records import DROPPED_ATTR, ORIGIN_ATTR, PREDICTED_ATTR, Origin, ranked

# The margin, relative to the leader's value: the seed-to-seed sd of the final best over three seeds in
# benchmarks/search_efficiency.py was 2.3% on charlm (0.043 of 1.896) and 4.2% on shapes (0.011 of 0.259).
SEED_SPREAD = 0.05
LEADER_WEIGHT = 2.0
# Multipliers of the family's best LR, tried in this order; an LR within 10^0.1 (26%) of one
# the family has tried counts as tried.
LR_STEPS = (2.0, 0.5, 4.0, 0.25, 1.4, 0.7)
SAME_LR_LOG10 = 0.1


def family_of(trial: Any) -> str | None:
    return trial.params.get("optimizer") or trial.user_attrs.get(PREDICTED_ATTR)


def standings(trials: list, families: list[str], minimize: bool) -> dict[str, float | None]:
    """Each family's best final value (None: no complete trial yet)."""
    best: dict[str, float | None] = dict.fromkeys(families)
    for t in reversed(ranked(trials, minimize)):  # worst first, so the best is written last
        if family_of(t) in best:
            best[family_of(t)] = t.values[0]
    return best


def behind(value: float | None, leader: float, minimize: bool) -> bool:
    """Worse than ``leader`` by more than the seed spread (no value at all counts as behind)."""
    if value is None:
        return True
    margin = SEED_SPREAD * abs(leader)
    return value > leader + margin if minimize else value < leader - margin


def next_family(trials: list, families: list[str], minimize: bool) -> tuple[str, dict[str, str]] | None:
    """The family the next trial goes to, and the families dropped with why; None to leave it to TPE.

    None until every family's predicted point has finished, and for a space of one family.
    """
    if len(families) < 2:
        return None
    predicted = {t.user_attrs.get(PREDICTED_ATTR): t for t in trials if t.user_attrs.get(PREDICTED_ATTR)}
    if any(f not in predicted or not predicted[f].state.is_finished() for f in families):
        return None
    best = standings(trials, families, minimize)
    scored = [f for f in families if best[f] is not None]
    if not scored:
        return None  # nothing completed: no evidence to allocate by
    leader = min(scored, key=lambda f: best[f] if minimize else -best[f])
    dropped = {
        f: (
            "no complete trial"
            if best[f] is None
            else f"best {best[f]:.4g} against {leader}'s {best[leader]:.4g}, "
            f"behind by more than the {SEED_SPREAD:.0%} seed spread"
        )
        for f in families
        if f != leader and behind(best[f], best[leader], minimize)
    }
    counts = {f: sum(1 for t in trials if family_of(t) == f) for f in families}
    survivors = [f for f in families if f not in dropped]
    chosen = min(survivors, key=lambda f: (counts[f] / (LEADER_WEIGHT if f == leader else 1.0), f != leader))
    return chosen, dropped


def refined_point(trials: list, family: str, minimize: bool, params: Mapping[str, Any]) -> dict:
    """The next trial of ``family``: its best trial with the LR moved by the first untried ``LR_STEPS``.

    ``params``: the space's parameters (``SearchSpace.params``); an LR outside its range is skipped.
    Only ``{"optimizer": family}`` when the family has no complete trial or every step is tried.
    """
    mine = [t for t in trials if family_of(t) == family]
    best = next(iter(ranked(mine, minimize)), None)
    name = f"{family}.lr"
    if best is None or name not in best.params or name not in params:
        return {"optimizer": family}
    tried = [t.params[name] for t in mine if name in t.params]
    for step in LR_STEPS:
        lr = best.params[name] * step
        if params[name].contains(lr) and all(abs(math.log10(lr / x)) > SAME_LR_LOG10 for x in tried):
            return {**best.params, name: lr}
    return {"optimizer": family}


def enqueue_allocated(
    study: Any,
    families: list[str],
    minimize: bool,
    named: set[str],
    on_notice: Callable[[str], None],
    params: Mapping[str, Any],
) -> None:
    """Queue the next trial with the family ``next_family`` chooses; tell ``on_notice`` of new drops.

    ``named``: the families the user listed in ``--optimizers`` (their drops say so); ``params``
    as in ``refined_point``. Does nothing while a queued trial waits (it runs next) or while
    ``next_family`` leaves it to TPE.
    """
    trials = study.get_trials(deepcopy=False)
    if any(t.state.name == "WAITING" for t in trials):
        return
    decision = next_family(trials, families, minimize)
    if decision is None:
        return
    chosen, dropped = decision
    known = study.user_attrs.get(DROPPED_ATTR, {})
    new = {f: why for f, why in dropped.items() if f not in known}
    if new:
        study.set_user_attr(DROPPED_ATTR, {**known, **new})
        for family, why in new.items():
            on_notice(drop_notice(family, why, family in named))
    origin = Origin("allocation", why=f"{chosen} ({len(families) - len(dropped)} of {len(families)} families left)")
    point = refined_point(trials, chosen, minimize, params)
    study.enqueue_trial(point, user_attrs={ORIGIN_ATTR: origin.to_dict()})


def named_families(optimizers: list[str]) -> set[str]:
    """The families the user chose: all of a space's unless they are the default set."""
    from tunekit.search_spaces.catalog import default_optimizers

    return set() if list(optimizers) == list(default_optimizers()) else set(optimizers)


def drop_notice(family: str, why: str, named: bool) -> str:
    """The sentence the live view and the summary print for a dropped family."""
    listed = " (named in --optimizers)" if named else ""
    return f"no more trials for {family}{listed}: {why}."


def dropped_families(study: Any) -> dict[str, str]:
    """The families the allocation stopped giving trials to, with why."""
    return dict(study.user_attrs.get(DROPPED_ATTR, {}))
