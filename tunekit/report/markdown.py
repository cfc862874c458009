"""The Markdown report: a summary for a terminal or a pull request, with PNG figures beside it."""

from __future__ import annotations

from pathlib import Path

from tunekit.report.data import ReportData
from tunekit.report.pngs import write_pngs
from tunekit.report.probe import TITLE as PROBE_TITLE
from tunekit.report.probe import caption, probe_of

_TITLES = {
    "history": "Optimization history",
    "family-schedule": "Families and schedules",
    "metric-vs-lr": "Final value against learning rate (x: the searched range; dashed: the prior's LR)",
    "learning-curves": "Learning curves and LR schedules",
    "importances": "Hyperparameter importances (Optuna's default evaluator)",
    "pareto-front": "Pareto front (search --also)",
    "lr-probe": PROBE_TITLE,
}


def write_markdown(d: ReportData, path: Path, top: int) -> list[Path]:
    """Write ``path`` and its figures ``STEM-NAME.png`` beside it; returns every file written."""
    pngs = write_pngs(d, path.with_suffix(""), top)
    counts = ", ".join(f"{k.lower()} {v}" for k, v in d.counts.items() if v)
    prior = d.prior
    lines = [
        f"# tunekit report: {d.study}",
        "",
        f"- script: `{d.script}`",
        f"- metric: {d.metric} ({d.direction}); budget {d.max_steps} optimizer steps per trial, "
        f"{d.evaluations} validations",
        f"- prior: {prior.get('law')}"
        + (f", peak LR {prior['lr']:.3g} (AdamW scale)" if prior.get("lr") else "")
        + (f", measured by an LR probe: {caption(probe_of(d))}" if probe_of(d) else ""),
        f"- trials: {counts}; compute {d.total_seconds():.1f} s, {d.total_steps()} optimizer steps",
        f"- best: trial {d.best.number}, {d.metric} = {d.best.value:.6g} ({d.best.label})",
        "",
        "## Best recipe",
        "",
        "```yaml",
        d.best_yaml.rstrip(),
        "```",
        "",
        f"Export it: `{d.export_command}`",
        "",
        "## Family x schedule",
        "",
        "| family | schedule | best | trials | pruned |",
        "|---|---|---|---|---|",
        *(
            f"| {f} | {s} | {'-' if c.best is None else f'{c.best:.4g}'} | {c.trials} | {c.pruned} |"
            for (f, s), c in sorted(d.grid().items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))
        ),
        "",
    ]
    if d.robust:
        lines += [
            "## Robust recipes (re-runs with new seeds)",
            "",
            "| rank | trial | recipe | trial value | mean | spread (sd) | re-runs |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {i} | {r.number} | {r.label} | {r.value:.4g} | {r.mean:.4g} | {r.spread:.2g} | {len(r.reruns)} |"
                for i, r in enumerate(d.robust, 1)
            ),
            "",
        ]
    for name, png in pngs.items():
        lines += [f"## {_TITLES[name]}", "", f"![{name}]({png.name})", ""]
    notes = [f"- {scope}: {entry}" for scope, entry in d.importances.items() if isinstance(entry, str)]
    if notes:
        lines += ["No importances for:", "", *notes, ""]
    stopped = [t for t in d.trials if t.state in ("PRUNED", "FAIL")]
    lines += ["## Pruned and failed trials", ""]
    if stopped:
        lines += ["| trial | state | recipe | steps | reason |", "|---|---|---|---|---|"]
        lines += [
            f"| {t.number} | {t.state} | {t.label} | {t.steps_trained} | {t.reason.replace('|', '/')} |"
            for t in stopped
        ]
    else:
        lines.append("No trial was pruned or failed.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [path, *pngs.values()]
