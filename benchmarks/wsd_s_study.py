"""What ``search --from-study`` saves: a later study at a larger budget continuing an earlier one (issue #9).

Usage (from the repository root)::

    python benchmarks/wsd_s_study.py                       # examples/charlm.py, 8 trials of 200, then 800 steps
    python benchmarks/wsd_s_study.py --trials 6 --short 100 --factor 4

In one run, on one fresh SQLite file:

1. ``tunekit search SCRIPT --study short --trials T --max-steps S`` (the earlier study; its best
   WSD trials keep their state from the start of their cooldown);
2. ``tunekit search SCRIPT --study long --max-steps F*S --from-study short --trials K``, where K is
   the number of states ``short`` kept: each trial continues one of them;
3. each of those K recipes again, from step 0 at F*S steps (``run_fit``, as a trial trains),
   which is what the long study would have trained without ``--from-study``.

It prints, per recipe, the optimizer steps and the final metric both ways, and the totals: the
steps saved, and the change of the metric that continuing instead of restarting brings (its
warmup was the short run's, and its data order restarts where it resumes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", default=str(ROOT / "examples" / "charlm.py"))
    parser.add_argument("--trials", type=int, default=8, help="trials of the earlier study")
    parser.add_argument("--short", type=int, default=200, help="the earlier study's --max-steps")
    parser.add_argument("--factor", type=int, default=4, help="the later study's budget, in short budgets")
    args = parser.parse_args()

    import optuna

    from tunekit.recipes import Recipe
    from tunekit.study.records import CONTINUES_ATTR, RECIPE_ATTR, STEPS_ATTR
    from tunekit.study.stable_states import has_state
    from tunekit.training.fit import run_fit
    from tunekit.training.script import ScriptSpec, load_script

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="wsd-s-"))
    url = f"sqlite:///{work / 'tunekit.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    common = ["--accelerator", "cpu", "--storage", url]

    def search(*extra: str) -> float:
        start = time.perf_counter()
        command = [sys.executable, "-m", "tunekit", "search", args.script, *common, *extra]
        subprocess.run(command, cwd=work, env=env, check=True, capture_output=True, text=True)
        return time.perf_counter() - start

    search("--study", "short", "--trials", str(args.trials), "--max-steps", str(args.short))
    short = optuna.load_study(study_name="short", storage=url).get_trials()
    kept = [t for t in short if has_state(url, t)]  # the best KEEP_BEST: pushed-out trials keep no file
    long_steps = args.factor * args.short
    seconds = search(
        "--study", "long", "--trials", str(len(kept)), "--max-steps", str(long_steps), "--from-study", "short"
    )
    continued = [
        t for t in optuna.load_study(study_name="long", storage=url).get_trials() if CONTINUES_ATTR in t.user_attrs
    ]
    script = load_script(ScriptSpec(args.script))
    rows, fresh_seconds = [], 0.0
    for t in continued:
        recipe = Recipe.from_dict(t.user_attrs[RECIPE_ATTR])
        fresh = run_fit(recipe, script, "val_loss", accelerator="cpu")
        fresh_seconds += fresh.seconds
        rows.append((t, recipe, fresh))

    print(f"{args.script}: study short, {args.trials} trials of {args.short} steps; study long at {long_steps} steps")
    print(f"{'short trial':>11}  {'recipe':<28} {'from step':>9}  {'continued':>17}  {'from step 0':>17}")
    for t, recipe, fresh in rows:
        label = f"{recipe.optimizer.name}/{recipe.schedule.name} lr={recipe.optimizer.lr:.2e}"
        step = t.user_attrs[CONTINUES_ATTR]["step"]
        print(
            f"{t.user_attrs[CONTINUES_ATTR]['trial']:>11}  {label:<28} {step:>9}  "
            f"{t.user_attrs[STEPS_ATTR]:>5} st {t.value:>9.4f}  {fresh.steps:>5} st {fresh.value:>9.4f}"
        )
    steps = sum(t.user_attrs[STEPS_ATTR] for t, _, _ in rows)
    fresh_steps = sum(f.steps for _, _, f in rows)
    change = [t.value - f.value for t, _, f in rows]
    print(
        f"total: {steps} steps continued against {fresh_steps} from step 0 ({1 - steps / fresh_steps:.0%} saved); "
        f"metric change continued - fresh: mean {sum(change) / len(change):+.4f}, "
        f"range {min(change):+.4f} to {max(change):+.4f}"
    )
    print(
        f"wall: the long study's {len(rows)} trials {seconds:.0f} s (with start-up), fresh runs {fresh_seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
