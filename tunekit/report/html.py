"""The self-contained HTML report: one file, plotly's JavaScript embedded once, no CDN, opens offline.

Each figure travels as JSON in a ``<script type="application/json" id="figure-NAME">`` block and
is drawn by one small loader, so the page holds plotly.js once however many figures it has.
"""

from __future__ import annotations

import html
from pathlib import Path

from tunekit.report import figures
from tunekit.report.data import ReportData
from tunekit.report.probe import TITLE, probe_figure

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; text-align: left; } pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; }
code { background: #f6f8fa; padding: 1px 4px; } .figure { width: 100%; } .note { color: #666; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1em; }
"""

_LOADER = """
document.querySelectorAll('script[type="application/json"][id^="figure-"]').forEach(function (node) {
  var fig = JSON.parse(node.textContent);
  var div = document.getElementById(node.id.slice("figure-".length));
  Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
});
"""


def write_html(d: ReportData, path: Path, top: int) -> list[Path]:
    """Write the report to ``path``; returns the files written (just ``path``)."""
    from plotly.offline import get_plotlyjs

    body = [
        _header(d),
        _section("Optimization history", _figure("history", figures.history(d))),
        _section("Families and schedules", _figure("family-schedule", figures.family_schedule(d))),
        _section("Final value against learning rate", _figure("metric-vs-lr", figures.metric_vs_lr(d))),
        _section("Learning curves and LR schedules", _figure("learning-curves", figures.learning_curves(d, top))),
        _section("Hyperparameter importances", _importances(d)),
        _section("Pruned and failed trials", _stopped(d)),
    ]
    probe = probe_figure(d)
    if probe is not None:  # issue #14: the measured prior's curve, after the history
        body.insert(2, _section(TITLE, _figure("lr-probe", probe)))
    if d.pareto is not None:
        body.insert(2, _section(f"Trade-off: {d.metric} against {d.also}", _figure("pareto-front", d.pareto)))
    if d.robust:
        body.insert(1, _section("Robust recipes (re-runs with new seeds)", _robust(d)))
    page = (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>tunekit report: {_e(d.study)}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head>\n<body>\n" + "\n".join(body) + f"\n<script>{_LOADER}</script>\n"
        "</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return [path]


def _header(d: ReportData) -> str:
    prior = d.prior
    prediction = (
        f"{_e(prior.get('law'))}: peak LR {prior['lr']:.3g} (AdamW scale) for {_e(prior.get('n_params'))} parameters"
        + (f", batch size {_e(prior['batch_size'])}" if prior.get("batch_size") else "")
        + ("" if prior.get("in_domain", True) else " (outside the law's fitted range)")
        if prior.get("lr")
        else _e(prior.get("law", "none"))
    )
    counts = ", ".join(f"{k.lower()} {v}" for k, v in d.counts.items() if v)
    rows = [
        ("script", f"<code>{_e(d.script)}</code>"),
        ("metric", f"{_e(d.metric)} ({_e(d.direction)})"),
        (
            "budget",
            f"{d.max_steps} optimizer steps per trial, {d.evaluations} validations"
            + (f", {d.target_trials} trials asked for" if d.target_trials else ""),
        ),
        ("prior", prediction),
        ("trials", counts),
        ("compute", f"{d.total_seconds():.1f} s of training, {d.total_steps()} optimizer steps in all"),
        ("best", f"trial {d.best.number}: {_e(d.metric)} = {d.best.value:.6g} ({_e(d.best.label)})"),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f"<h1>tunekit report: {_e(d.study)}</h1>\n<table id='summary'>{table}</table>\n"
        f"<h2>Best recipe</h2>\n<pre id='best-recipe'>{_e(d.best_yaml)}</pre>\n"
        f"<p>Export it: <code id='export-command'>{_e(d.export_command)}</code></p>"
    )


def _importances(d: ReportData) -> str:
    parts = []
    for scope, fig in figures.importances(d):
        if isinstance(fig, str):
            parts.append(f"<div><h3>{_e(scope)}</h3><p class='note'>{_e(fig)}</p></div>")
        else:
            parts.append(f"<div>{_figure('importance-' + scope.replace(' ', '-'), fig)}</div>")
    return (
        "<p class='note'>Optuna's default importance evaluator (PED-ANOVA) on complete trials; "
        "with few trials per value, read them as rough.</p>"
    ) + ("<div class='grid'>" + "".join(parts) + "</div>")


def _robust(d: ReportData) -> str:
    rows = "".join(
        f"<tr><td>{rank}</td><td>{r.number}</td><td>{_e(r.label)}</td><td>{r.value:.4g}</td><td>{r.mean:.4g}</td>"
        f"<td>{r.spread:.2g}</td><td>{len(r.reruns)}</td></tr>"
        for rank, r in enumerate(d.robust, 1)
    )
    return (
        "<table id='robust'><tr><th>rank</th><th>trial</th><th>recipe</th><th>trial value</th><th>mean</th>"
        f"<th>spread (sd)</th><th>re-runs</th></tr>{rows}</table>"
        f"<p class='note'>From <code>tunekit show --study {_e(d.study)} --robust</code>: the top trials retrained "
        "with new seeds, ranked by the mean of the re-runs.</p>"
    )


def _stopped(d: ReportData) -> str:
    stopped = [t for t in d.trials if t.state in ("PRUNED", "FAIL")]
    if not stopped:
        return "<p class='note'>No trial was pruned or failed.</p>"
    rows = "".join(
        f"<tr><td>{t.number}</td><td>{t.state}</td><td>{_e(t.label)}</td><td>{t.steps_trained}</td>"
        f"<td>{_e(t.reason)}</td><td>{_e(t.origin)}</td></tr>"
        for t in stopped
    )
    return (
        "<table id='stopped'><tr><th>trial</th><th>state</th><th>recipe</th><th>steps</th><th>reason</th>"
        f"<th>origin</th></tr>{rows}</table>"
        f"<p class='note'>A failed trial's traceback: <code>tunekit show --study {_e(d.study)} --trial N</code></p>"
    )


def _section(title: str, content: str) -> str:
    return f"<section><h2>{_e(title)}</h2>\n{content}\n</section>"


def _figure(name: str, fig: object) -> str:
    # "</" inside a script element would end it early; "<\/" is the same JSON string.
    data = fig.to_json().replace("</", "<\\/")
    return f"<div class='figure' id='{name}'></div><script type='application/json' id='figure-{name}'>{data}</script>"


def _e(value: object) -> str:
    return html.escape(str(value))
