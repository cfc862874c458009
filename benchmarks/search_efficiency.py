"""Does the scaling-law prior pay? Search efficiency at equal compute on the bundled examples.

Run (about 20-30 minutes on 2 CPU cores with the defaults)::

    python benchmarks/search_efficiency.py                       # charlm and shapes, 3 seeds, 12 trials x 200 steps
    python benchmarks/search_efficiency.py --trials 4 --max-steps 40 --seeds 0 --examples shapes   # smoke test

Methods (a)-(d), each with the same number of trials and the same steps per trial (equal compute), per seed:

- (a) ``tunekit search SCRIPT`` with its defaults (default prior, all families and schedules, pruning).
- (b) the same with ``--prior none``: plain wide ranges, AdamW [1e-5, 1e-1].
- (c) what a user writes without tunekit: a plain Optuna TPE study (``TPESampler(seed)``, no pruner) over
  AdamW with lr log-uniform [1e-5, 1e-1] and weight decay log-uniform [1e-4, 1e-1], torch's default
  betas, cosine decay to 0 over the run with no warmup and no clipping (``AdamW`` +
  ``CosineAnnealingLR(T_max=max_steps)`` stepped every step).
- (d) the script's own ``configure_optimizers``, untuned (one run).
- (c') and (r) (issue #14): (c)'s space and loop with TPE's random start cut to 4 trials
  (``TPESampler(seed, n_startup_trials=4)``), and with random search (``RandomSampler(seed)``).
- (p) (issue #14): the measured prior's LR probe alone (``tunekit predict --prior measure``, sized by
  ``--trials`` and ``--max-steps`` as the search sizes it). Under the table, its centre is checked
  against the LR of the best trial of (c), (c') and (r) pooled (a wide search): within 3x.

Tasks: the bundled examples (charlm, shapes) and, for issue #14, two that are not language models,
``benchmarks/tasks/tabular.py`` (an MLP on generated tabular regression) and
``benchmarks/tasks/cnn.py`` (a BatchNorm CNN on generated gratings)::

    python benchmarks/search_efficiency.py --examples charlm,shapes,tabular,cnn --methods "a,c,c',r,d,p"

Issue #9 adds, at equal compute rather than equal trials (``--methods a,c,e,f``):

- (e) ``tunekit search SCRIPT --fidelity sh --min-steps max_steps/9``: schedule-aware successive
  halving with rungs at 1/9 and 1/3 of the budget, continued with ``resume`` until it has spent the
  optimizer steps of 12 full trials (so it runs more trials);
- (g) ``tunekit search SCRIPT --fidelity sh``, the default ``--min-steps max_steps/3``: one rung;
- (f) (c)'s study with Optuna's ``HyperbandPruner`` (min_resource max_steps/9, reduction factor 3),
  the value reported at 8 validations, run to the same compute.

A second table counts compute in optimizer steps (rung branches included): spent per seed, spent
until the best value reached (c)'s 12-trial best (and its median as a fraction of (c)'s compute),
and the best value among the trials that finished within the compute (a) spent on its 12 trials.

(a) and (b) run the real CLI in a subprocess; (c) and (d) train through the same Lightning loop with
the same validation points and seed, so every number is the metric at the end of training, measured
the same way. The table gives, per example and method: the best final metric (mean ± sd over seeds
and per seed), the trials needed to reach (c)'s final best of the same seed (strictly; ">T" when
never), and the trial-0 metric: the prediction-only point for (a) and (b), the first TPE draw for
(c), the single run for (d). A JSON file with every trial's value is written next to the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = {"charlm": REPO / "examples" / "charlm.py", "shapes": REPO / "examples" / "shapes.py"}
# Issue #14: benchmark tasks that are not language models (benchmarks/tasks/).
EXAMPLES |= {"tabular": REPO / "benchmarks" / "tasks" / "tabular.py", "cnn": REPO / "benchmarks" / "tasks" / "cnn.py"}
METHODS = {
    "a": "tunekit default",
    "b": "tunekit --prior none",
    "c": "plain Optuna TPE, AdamW+cosine",
    "d": "script's own optimizer, untuned",
    "e": "tunekit sh --min-steps max/9",
    "f": "Optuna TPE + HyperbandPruner",
    "g": "tunekit --fidelity sh (one rung, max/3)",
    "h": "(g) with --budget-bound own-schedule",
}
# (e) and (f) run trials until they have spent this many full trials of compute (optimizer steps),
# so they run more trials than (a) and (c); the table reads (e) at the compute (a) spent (issue #9).
EQUAL_COMPUTE_TRIALS = 12
HYPERBAND_EVALUATIONS = 8  # (f) reports every max_steps/8 steps, so Hyperband's rungs have values to read
# Issue #14: two more hand-written baselines over (c)'s space, and the measured prior's probe alone.
METHODS |= {
    "c'": "TPE, 4 startup trials, AdamW+cos",
    "r": "random search, AdamW+cosine",
    "p": "LR probe alone (predict --prior measure)",
}
PROBE_WITHIN = 3.0  # the probe's centre must be within 3x of the wide search's best LR (issue #14)
METRIC = "val_loss"
# Methods whose every trial trains the whole budget (no pruner): their compute is trials x max_steps.
FULL_BUDGET_METHODS = ("c", "c'", "r", "d")


@dataclass
class Run:
    example: str
    method: str
    seed: int
    values: list  # final metric per trial in trial order; None for pruned or failed trials
    seconds: float
    prior: dict | None = None
    steps: list | None = None  # optimizer steps each trial trained, rung branches included (issue #9)
    lrs: list | None = None  # (c), (c'), (r): each trial's AdamW LR, for the probe check of issue #14


# --- the four methods --------------------------------------------------------------------------------


def run_tunekit(example: str, seed: int, trials: int, max_steps: int, workdir: Path, prior: str | None) -> Run:
    """(a)/(b): the real CLI in a subprocess, one worker, its own SQLite file."""
    import optuna

    method = "a" if prior is None else "b"
    db = workdir / f"{example}-{method}-{seed}.db"
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    cmd = [sys.executable, "-m", "tunekit", "search", str(EXAMPLES[example]), "--study", "bench"]
    cmd += ["--storage", url, "--trials", str(trials), "--max-steps", str(max_steps), "--seed", str(seed)]
    cmd += ["--accelerator", "cpu"] + (["--prior", prior] if prior else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_one_thread_env())
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    study = optuna.load_study(study_name="bench", storage=url)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    values = [t.value if t.state.name == "COMPLETE" else None for t in trials]
    prior_record = study.user_attrs.get("tunekit.settings", {}).get("prior")
    steps = [t.user_attrs.get("tunekit.steps_trained", max_steps) for t in trials]
    return Run(example, method, seed, values, seconds, prior_record, steps)


def run_tunekit_sh(example: str, seed: int, trials: int, max_steps: int, workdir: Path, method: str = "e") -> Run:
    """(e): the real CLI with ``--fidelity sh --min-steps max_steps/9`` (rungs at 1/9 and 1/3 of the
    budget), continued with ``resume`` until it has spent the compute of ``EQUAL_COMPUTE_TRIALS``
    full trials (steps recorded on each trial, branches included). (g): the same with the default
    ``--min-steps``, ``max_steps/3``: one rung. (h): (g) with ``--budget-bound own-schedule`` (budget-bound
    schedules compared within their own schedule rather than compressed to each rung)."""
    import optuna

    db = workdir / f"{example}-{method}-{seed}.db"
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    base = [sys.executable, "-m", "tunekit"]
    first = [*base, "search", str(EXAMPLES[example]), "--study", "bench", "--storage", url, "--trials", str(trials)]
    first += ["--max-steps", str(max_steps), "--seed", str(seed), "--accelerator", "cpu", "--fidelity", "sh"]
    first += ["--min-steps", str(max_steps // 9)] if method == "e" else []  # (g): the default, max_steps // 3
    first += ["--budget-bound", "own-schedule"] if method == "h" else []
    more = [*base, "resume", "--study", "bench", "--storage", url, "--trials", "6", "--accelerator", "cpu"]
    start = time.perf_counter()
    cmd = first
    while True:
        done = subprocess.run(cmd, capture_output=True, text=True, env=_one_thread_env())
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        study = optuna.load_study(study_name="bench", storage=url)
        finished = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        spent = sum(t.user_attrs.get("tunekit.steps_trained", 0) for t in finished)
        if spent >= EQUAL_COMPUTE_TRIALS * max_steps or len(finished) >= 8 * trials:
            break
        cmd = more
    values = [t.value if t.state.name == "COMPLETE" else None for t in finished]
    steps = [t.user_attrs.get("tunekit.steps_trained", 0) for t in finished]
    prior_record = study.user_attrs.get("tunekit.settings", {}).get("prior")
    return Run(example, method, seed, values, time.perf_counter() - start, prior_record, steps)


def run_hyperband(example: str, seed: int, trials: int, max_steps: int) -> Run:
    """(f): (c)'s hand-written study with Optuna's ``HyperbandPruner`` (rungs from max_steps/9, eta 3),
    the value reported at every validation, run until it has spent (e)'s compute."""
    import optuna

    from tunekit.training.fit import run_fit
    from tunekit.training.quiet import silence_lightning
    from tunekit.training.script import ScriptSpec, load_script

    silence_lightning()
    loaded = load_script(ScriptSpec(str(EXAMPLES[example])))
    spent: dict[int, int] = {}

    def objective(trial: optuna.Trial) -> float:
        recipe = _plain_recipe(trial, loaded, seed, max_steps).with_training(evaluations=HYPERBAND_EVALUATIONS)

        def report(step: int, value: float) -> None:
            spent[trial.number] = step
            trial.report(value, step)
            if step < max_steps and trial.should_prune():
                raise optuna.TrialPruned()

        try:
            value = run_fit(recipe, loaded, METRIC, accelerator="cpu", on_eval=report).value
        except optuna.TrialPruned:
            raise
        except Exception:  # noqa: BLE001 - a diverged run is a failed trial for a hand-written study too
            return float("nan")
        return value

    pruner = optuna.pruners.HyperbandPruner(min_resource=max(1, max_steps // 9), max_resource=max_steps)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    start = time.perf_counter()
    while sum(spent.values()) < EQUAL_COMPUTE_TRIALS * max_steps and len(study.trials) < 8 * trials:
        study.optimize(objective, n_trials=1)
    values = [t.value if t.state.name == "COMPLETE" and math.isfinite(t.value) else None for t in study.trials]
    steps = [spent.get(t.number, max_steps) for t in study.trials]
    return Run(example, "f", seed, values, time.perf_counter() - start, None, steps)


def _plain_recipe(trial: Any, loaded: Any, seed: int, max_steps: int) -> Any:
    """(c)'s space: AdamW, lr and weight decay log-uniform, torch's betas, cosine to 0, no warmup."""
    from tunekit.recipes import Recipe

    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-4, 1e-1, log=True)
    return Recipe.from_dict(
        {
            "tunekit_recipe": 1,
            "optimizer": {"name": "adamw", "lr": lr, "betas": [0.9, 0.999], "weight_decay": weight_decay},
            "schedule": {"name": "cosine", "warmup_fraction": 0.0},
            "training": {"max_steps": max_steps, "batch_size": loaded.default_batch_size, "seed": seed},
        }
    )


def run_plain_optuna(example: str, seed: int, trials: int, max_steps: int, method: str = "c") -> Run:
    """(c): the hand-written study. Same training loop and seed as tunekit's trials (run_fit).

    (c') and (r) (issue #14) search the same space with TPE's random start cut to 4 trials and
    with random search."""
    import optuna

    from tunekit.training.fit import run_fit
    from tunekit.training.quiet import silence_lightning
    from tunekit.training.script import ScriptSpec, load_script

    silence_lightning()
    loaded = load_script(ScriptSpec(str(EXAMPLES[example])))

    def objective(trial: optuna.Trial) -> float:
        # AdamW(lr, betas=(0.9, 0.999), weight_decay) + CosineAnnealingLR(T_max=max_steps), per step.
        recipe = _plain_recipe(trial, loaded, seed, max_steps)
        try:
            value = run_fit(recipe, loaded, METRIC, accelerator="cpu").value
        except Exception:  # noqa: BLE001 - a diverged run is a failed trial for a hand-written study too
            return float("nan")
        return value

    samplers = {
        "c": lambda: optuna.samplers.TPESampler(seed=seed),
        "c'": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
        "r": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    study = optuna.create_study(direction="minimize", sampler=samplers[method]())
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    values = [t.value if t.value is not None and math.isfinite(t.value) else None for t in study.trials]
    lrs = [t.params["lr"] for t in study.trials]
    return Run(example, method, seed, values, time.perf_counter() - start, None, [max_steps] * len(values), lrs)


def run_probe_only(example: str, seed: int, trials: int, max_steps: int) -> Run:
    """(p): the measured prior's LR probe alone, as ``tunekit predict --prior measure`` runs it (issue #14)."""
    cmd = [sys.executable, "-m", "tunekit", "predict", str(EXAMPLES[example]), "--prior", "measure"]
    cmd += ["--trials", str(trials), "--max-steps", str(max_steps), "--seed", str(seed), "--format", "json"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_one_thread_env())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    prior = json.loads(done.stdout)["prior"]["record"]
    return Run(example, "p", seed, [], time.perf_counter() - start, prior)


def probe_check(runs: list[Run]) -> list[str]:
    """Per example: the probe's centre (each seed) against the LR of the best trial of (c), (c') and (r) pooled."""
    lines = []
    for example in dict.fromkeys(r.example for r in runs):
        wide = [
            (v, lr)
            for r in runs
            if r.example == example and r.lrs
            for v, lr in zip(r.values, r.lrs, strict=True)
            if v is not None
        ]
        probes = [r.prior["lr"] for r in runs if r.example == example and r.method == "p" and r.prior]
        if not wide or not probes:
            continue
        best_lr = min(wide)[1]
        ratios = [max(p / best_lr, best_lr / p) for p in probes]
        ok = all(x <= PROBE_WITHIN for x in ratios)
        lines.append(
            f"probe on {example}: centre {', '.join(f'{p:.3g}' for p in probes)} vs the wide search's best LR "
            f"{best_lr:.3g} ({len(wide)} trials of c, c', r): within {max(ratios):.2g}x, "
            f"{'within' if ok else 'NOT within'} {PROBE_WITHIN:g}x"
        )
    return lines


def run_untuned(example: str, seed: int, max_steps: int) -> Run:
    """(d): the script's own configure_optimizers, with run_fit's trainer settings."""
    import lightning.pytorch as pl

    from tunekit.training.callbacks import EvalReporter
    from tunekit.training.fit import RunOptions, budget_settings, fit_to_the_end, make_trainer
    from tunekit.training.quiet import silence_lightning
    from tunekit.training.script import ScriptSpec, load_script

    silence_lightning()
    loaded = load_script(ScriptSpec(str(EXAMPLES[example])))
    start = time.perf_counter()
    pl.seed_everything(seed, workers=True, verbose=False)
    model = loaded.build_model()
    data = loaded.build_data(loaded.default_batch_size)
    reporter = EvalReporter(METRIC)
    evaluations = 4  # as tunekit's trials
    trainer = make_trainer(
        RunOptions("cpu"), [reporter], **budget_settings(max_steps, max(1, max_steps // evaluations))
    )
    fit_to_the_end(trainer, model, data, reporter)
    value = reporter.history[-1][1]
    return Run(example, "d", seed, [value if math.isfinite(value) else None], time.perf_counter() - start)


def _one_thread_env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return env


def _work(job: tuple) -> Run:
    import torch

    torch.set_num_threads(1)
    example, method, seed, trials, max_steps, workdir = job
    runners = {
        "a": lambda: run_tunekit(example, seed, trials, max_steps, Path(workdir), None),
        "b": lambda: run_tunekit(example, seed, trials, max_steps, Path(workdir), "none"),
        "c": lambda: run_plain_optuna(example, seed, trials, max_steps, "c"),
        "c'": lambda: run_plain_optuna(example, seed, trials, max_steps, "c'"),
        "r": lambda: run_plain_optuna(example, seed, trials, max_steps, "r"),
        "p": lambda: run_probe_only(example, seed, trials, max_steps),
        "e": lambda: run_tunekit_sh(example, seed, trials, max_steps, Path(workdir)),
        "f": lambda: run_hyperband(example, seed, trials, max_steps),
        "g": lambda: run_tunekit_sh(example, seed, trials, max_steps, Path(workdir), "g"),
        "h": lambda: run_tunekit_sh(example, seed, trials, max_steps, Path(workdir), "h"),
        "d": lambda: run_untuned(example, seed, max_steps),
    }
    return runners[method]()


# --- the table -----------------------------------------------------------------------------------------


def best_so_far(values: list) -> list:
    out, best = [], math.inf
    for v in values:
        if v is not None and v < best:
            best = v
        out.append(best)
    return out


def trials_to_reach(values: list, target: float) -> int | None:
    """1-based number of trials after which the best value is <= target (None: never)."""
    for i, b in enumerate(best_so_far(values), start=1):
        if b <= target:
            return i
    return None


def steps_to_reach(run: Run, target: float) -> int | None:
    """Optimizer steps (branches included) spent when the best value first is <= target (None: never)."""
    spent = 0
    for value, steps in zip(run.values, run.steps or [], strict=False):
        spent += steps
        if value is not None and value <= target:
            return spent
    return None


def best_within(run: Run, budget: float) -> float:
    """The best final value among the trials finished within ``budget`` optimizer steps, in trial order."""
    best, spent = math.inf, 0
    for value, steps in zip(run.values, run.steps or [], strict=False):
        spent += steps
        if spent > budget:
            break
        if value is not None:
            best = min(best, value)
    return best


def compute_columns(mine: list[Run], by: dict) -> dict:
    """Issue #9's columns: compute spent, compute to reach (c)'s best, best at (a)'s compute."""
    out: dict = {"compute": [sum(r.steps or []) for r in mine], "steps_to_c": [], "best_at_a": []}
    for r in mine:
        c, a = by.get(("c", r.seed)), by.get(("a", r.seed))
        if c is not None:
            out["steps_to_c"].append(steps_to_reach(r, min((v for v in c.values if v is not None), default=math.inf)))
        if a is not None:
            out["best_at_a"].append(best_within(r, sum(a.steps or [])))
    return out


def summarize(runs: list[Run], trials: int) -> list[dict]:
    rows = []
    for example in dict.fromkeys(r.example for r in runs):
        by = {(r.method, r.seed): r for r in runs if r.example == example}
        seeds = sorted({r.seed for r in runs if r.example == example})
        for method in METHODS:
            mine = [by[(method, s)] for s in seeds if (method, s) in by and by[(method, s)].values]
            if not mine:
                continue
            bests = [min((v for v in r.values if v is not None), default=math.inf) for r in mine]
            reach = []
            wins = 0
            for r, b in zip(mine, bests, strict=True):
                c = by.get(("c", r.seed))
                if c is None:
                    continue
                c_best = min((v for v in c.values if v is not None), default=math.inf)
                reach.append(trials_to_reach(r.values, c_best))
                wins += b <= c_best
            first = [r.values[0] for r in mine if r.values and r.values[0] is not None]
            finite = [b for b in bests if math.isfinite(b)]
            rows.append(
                {
                    "example": example,
                    "method": method,
                    "name": METHODS[method],
                    "seeds": seeds,
                    "best_mean": statistics.mean(finite) if finite else None,
                    "best_sd": statistics.stdev(finite) if len(finite) > 1 else 0.0,
                    "best_per_seed": bests,
                    "trials_to_reach_c": reach,
                    "at_least_as_good_as_c": f"{wins}/{len(reach)}",
                    "trial0_mean": statistics.mean(first) if first else None,
                    "trial0_per_seed": [r.values[0] for r in mine],
                    "minutes": sum(r.seconds for r in mine) / 60,
                    "prior": mine[0].prior,
                    **compute_columns(mine, by),
                }
            )
    return rows


def format_table(rows: list[dict], trials: int, max_steps: int) -> str:
    def g(x: float | None) -> str:
        return "-" if x is None or not math.isfinite(x) else f"{x:.4f}"

    def reach(xs: list) -> str:
        return ",".join(">" + str(trials) if x is None else str(x) for x in xs)

    head = (
        f"{'example':8} {'method':38} {'best final (mean±sd)':22} {'best per seed':28} "
        f"{'trials to (c) best':20} {'>= (c)':7} {'trial-0 (mean)':15} {'min':>5}"
    )
    lines = [
        f"{trials} trials x {max_steps} steps per trial; metric {METRIC} at the end of training (lower is better)",
        head,
    ]
    lines.append("-" * len(head))
    for r in rows:
        label = f"({r['method']}) {r['name']}"
        per_seed = " ".join(g(b) for b in r["best_per_seed"])
        trials_col = reach(r["trials_to_reach_c"]) if r["method"] != "d" else reach(r["trials_to_reach_c"]) + " (1 run)"
        lines.append(
            f"{r['example']:8} {label:38} {g(r['best_mean']) + ' ± ' + g(r['best_sd']):22} {per_seed:28} "
            f"{trials_col:20} {r['at_least_as_good_as_c']:7} {g(r['trial0_mean']):15} {r['minutes']:5.1f}"
        )
    lines += compute_table(rows)
    priors = {r["example"]: r["prior"] for r in rows if r["method"] == "a" and r["prior"]}
    for example, prior in priors.items():
        lines.append(f"prior used by (a) on {example}: {prior}")
    return "\n".join(lines)


def compute_table(rows: list[dict]) -> list[str]:
    """Compute in optimizer steps, rung branches included (issue #9), per example and method."""

    def steps(xs: list) -> str:
        return ",".join(">max" if x is None else str(x) for x in xs)

    def median(xs: list) -> str:
        return "-" if not xs or None in xs else str(int(statistics.median(xs)))

    head = (
        f"{'example':8} {'method':38} {'compute/seed (steps)':24} {'steps to (c) best':24} {'median':>7} "
        f"{'vs (c) compute':>14}  {'best at (a) compute':28}"
    )
    lines = ["", "compute in optimizer steps, rung branches included", head, "-" * len(head)]
    c_compute = {r["example"]: statistics.median(r["compute"]) for r in rows if r["method"] == "c" and r["compute"]}
    for r in rows:
        to_c = r["steps_to_c"]
        ratio = "-"
        if to_c and None not in to_c and r["example"] in c_compute:
            ratio = f"{statistics.median(to_c) / c_compute[r['example']]:.2f}"
        at_a = " ".join("-" if not math.isfinite(b) else f"{b:.4f}" for b in r["best_at_a"])
        lines.append(
            f"{r['example']:8} {'(' + r['method'] + ') ' + r['name']:38} {steps(r['compute']):24} {steps(to_c):24} "
            f"{median(to_c):>7} {ratio:>14}  {at_a:28}"
        )
    return lines


def format_probe_check(runs: list[Run]) -> str:
    """The probe's check (issue #14), printed under the table."""
    return "\n".join(probe_check(runs))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", default="charlm,shapes", help="comma-separated: " + ",".join(EXAMPLES))
    parser.add_argument("--methods", default="a,b,c,d", help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--trials", type=int, default=12, help="trials per study (equal for a, b, c)")
    parser.add_argument("--max-steps", type=int, default=200, help="optimizer steps per trial")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (training and sampler)")
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="parallel processes, 1 thread each"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tunekit-search-efficiency",
        help="where the SQLite files and results.json go",
    )
    parser.add_argument(
        "--with-results",
        type=Path,
        action="append",
        default=[],
        help="an earlier results.json whose runs join the table (repeatable; --methods '' only joins them)",
    )
    args = parser.parse_args(argv)

    examples = [e for e in args.examples.split(",") if e]
    methods = [m for m in args.methods.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    unknown = (set(examples) - set(EXAMPLES)) | (set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown example or method: {sorted(unknown)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir.resolve()
    # Longest first (tunekit studies, then plain TPE), so the pool ends together.
    order = {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0, "f": 1, "g": 0, "h": 0, "c'": 2, "r": 2, "p": 3}
    jobs = [
        (e, m, s, args.trials, args.max_steps, str(workdir))
        for m in sorted(methods, key=order.get)
        for e in examples
        for s in seeds
    ]
    start = time.perf_counter()
    runs: list[Run] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for run in pool.map(_work, jobs):
            runs.append(run)
            print(
                f"[{(time.perf_counter() - start) / 60:5.1f} min] {run.example} ({run.method}) seed {run.seed}: "
                f"best {min((v for v in run.values if v is not None), default=float('nan')):.4f}, "
                f"trial 0 {run.values[0] if run.values else None}",
                flush=True,
            )
    for earlier in args.with_results:
        seen = {(x.example, x.method, x.seed) for x in runs}
        saved = json.loads(earlier.read_text())
        for r in saved["runs"]:
            if (r["example"], r["method"], r["seed"]) in seen:
                continue
            run = Run(**r)
            if run.steps is None and run.method in FULL_BUDGET_METHODS:  # saved before steps were recorded
                run.steps = [int(saved["args"]["max_steps"])] * len(run.values)
            runs.append(run)
    rows = summarize(runs, args.trials)
    table = format_table(rows, args.trials, args.max_steps)
    print()
    print(table)
    print(format_probe_check(runs))
    print(f"\ntotal {(time.perf_counter() - start) / 60:.1f} min with --jobs {args.jobs}")
    out = workdir / "results.json"
    out.write_text(
        json.dumps(
            {"args": vars(args) | {"workdir": str(workdir)}, "runs": [asdict(r) for r in runs], "rows": rows},
            indent=1,
            default=str,
        )
    )
    print(f"every trial's value: {out}")


if __name__ == "__main__":
    main()
