"""The report's figures as PNGs (matplotlib, object-oriented API on an Agg canvas: no pyplot state,
no browser), for ``tunekit report --format md``. The same sections as ``figures.py`` draws in plotly.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tunekit.report.data import ReportData, multiplier_curve, quiet_small_regimes
from tunekit.report.palette import PRUNED_OPACITY, family_colours, trial_colour
from tunekit.report.probe import probe_png


def write_pngs(d: ReportData, stem: Path, top: int) -> dict[str, Path]:
    """Draw every figure to ``STEM-NAME.png``; returns ``{section name: path}``."""
    drawings = {
        "history": _history,
        "family-schedule": _family_schedule,
        "metric-vs-lr": _metric_vs_lr,
        "learning-curves": lambda d: _learning_curves(d, top),
        "importances": _importances,
        "pareto-front": _pareto,
        "lr-probe": probe_png,  # issue #14: drawn only when the prior was measured
    }
    out = {}
    for name, draw in drawings.items():
        fig = draw(d)
        if fig is None:
            continue
        path = stem.with_name(f"{stem.name}-{name}.png")
        fig.tight_layout()
        fig.savefig(path, format="png")
        out[name] = path
    return out


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _history(d: ReportData) -> Figure:
    colours = family_colours(d.families)
    fig = _figure(8, 4)
    ax = fig.add_subplot()
    for t in d.finished():
        if t.last_value is not None:
            pruned = t.state != "COMPLETE"
            ax.scatter(
                t.number,
                t.last_value,
                color=colours.get(t.family, "grey"),
                marker="x" if pruned else "o",
                alpha=PRUNED_OPACITY if pruned else 1.0,
            )
    xs, ys = [n for n, _ in d.best_so_far()], [b.value for _, b in d.best_so_far()]
    ax.step(xs, ys, where="post", color="black", lw=1.2, label="best so far")
    for family in d.families:
        ax.scatter([], [], color=colours[family], label=family)
    ax.legend(fontsize=7, loc="best")
    ax.set(title="Optimization history (x: pruned, last value)", xlabel="trial", ylabel=d.metric)
    ax.grid(alpha=0.3)
    return fig


def _family_schedule(d: ReportData) -> Figure:
    cells = d.grid()
    families = [f for f in d.families if any(k[0] == f for k in cells)]
    schedules = [s for s in d.schedules if any(k[1] == s for k in cells)]
    fig = _figure(1.6 * len(schedules) + 3, 0.7 * len(families) + 1.5)
    ax = fig.add_subplot()
    z = [
        [math.nan if cells.get((f, s)) is None or cells[(f, s)].best is None else cells[(f, s)].best for s in schedules]
        for f in families
    ]
    image = ax.imshow(z, cmap="viridis_r" if d.minimize else "viridis", aspect="auto")
    for (f, s), cell in cells.items():
        best = "-" if cell.best is None else f"{cell.best:.4g}"
        ax.text(
            schedules.index(s),
            families.index(f),
            f"{best}\n{cell.caption()}",
            ha="center",
            va="center",
            fontsize=7,
            bbox={"facecolor": "white", "alpha": 0.6, "lw": 0},
        )
    ax.set_xticks(range(len(schedules)), schedules)
    ax.set_yticks(range(len(families)), families)
    fig.colorbar(image, ax=ax, label=f"best {d.metric}")
    ax.set_title("Family x schedule: best value, trials, pruned")
    return fig


def _metric_vs_lr(d: ReportData) -> Figure:
    colours = family_colours(d.families)
    families = [f for f in d.families if any(t.family == f and t.lr for t in d.finished())]
    cols = min(3, len(families))
    rows = math.ceil(len(families) / cols)
    fig = _figure(4 * cols, 3 * rows)
    for i, family in enumerate(families):
        ax = fig.add_subplot(rows, cols, i + 1)
        for t in d.finished():
            if t.family == family and t.lr and t.last_value is not None:
                pruned = t.state != "COMPLETE"
                ax.scatter(
                    t.lr,
                    t.last_value,
                    color=colours[family],
                    marker="x" if pruned else "o",
                    alpha=PRUNED_OPACITY if pruned else 1.0,
                )
        if (p := d.predictions.get(family)) is not None:
            ax.axvline(p.lr, color="grey", ls="--", lw=1, label=f"prior's LR {p.lr:.2g}")
            ax.set_xlim(p.low, p.high)
            ax.legend(fontsize=7)
        ax.set_xscale("log")
        ax.set(title=family, xlabel="peak LR", ylabel=d.metric if i % cols == 0 else None)
        ax.grid(alpha=0.3)
    return fig


def _learning_curves(d: ReportData, top: int) -> Figure:
    fig = _figure(9, 6)
    metric_ax = fig.add_subplot(2, 1, 1)
    lr_ax = fig.add_subplot(2, 1, 2, sharex=metric_ax)
    for i, t in enumerate(d.curve_trials(top)):
        pruned = t.state == "PRUNED"
        style = {"color": trial_colour(i), "alpha": PRUNED_OPACITY if pruned else 1.0, "ls": ":" if pruned else "-"}
        label = f"trial {t.number} {t.label}" + (" (pruned)" if pruned else "")
        metric_ax.plot([s for s, _ in t.curve], [v for _, v in t.curve], marker="o", ms=3, label=label, **style)
        lr_ax.plot(*multiplier_curve(t), **style)
    metric_ax.set(title=f"Learning curves of the top {top} trials and the pruned ones", ylabel=d.metric)
    metric_ax.legend(fontsize=6, loc="upper right")
    lr_ax.set(xlabel="optimizer step", ylabel="LR multiplier", ylim=(-0.03, 1.05))
    for ax in (metric_ax, lr_ax):
        ax.grid(alpha=0.3)
    return fig


def _importances(d: ReportData) -> Figure | None:
    import optuna

    drawn = [(scope, entry) for scope, entry in d.importances.items() if not isinstance(entry, str)]
    if not drawn:
        return None
    fig = _figure(5 * len(drawn), 4)
    for i, (scope, (study, params)) in enumerate(drawn):
        with quiet_small_regimes():
            values = optuna.importance.get_param_importances(study, params=params)
        ax = fig.add_subplot(1, len(drawn), i + 1)
        names = list(values)[::-1]
        ax.barh(names, [values[n] for n in names])
        ax.set(title=f"importances: {scope}", xlabel="importance")
        ax.tick_params(axis="y", labelsize=7)
    return fig


def _pareto(d: ReportData) -> Figure | None:
    """The Pareto front of a ``search --also`` study: the points and axis titles of the same Optuna
    figure the HTML page embeds, so both formats show one front."""
    if d.pareto is None:
        return None
    fig = _figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    # Optuna draws the dominated trials first, then the front (plot_pareto_front with
    # include_dominated_trials=True); its traces carry no names.
    traces = [t for t in d.pareto.data if t.x is not None and len(t.x)]
    labels = ["dominated trials", "Pareto front"][2 - len(traces) :] if len(traces) <= 2 else [None] * len(traces)
    for trace, label in zip(traces, labels, strict=True):
        front = label == "Pareto front"
        ax.scatter(trace.x, trace.y, s=22 if front else 14, color="C3" if front else "0.6", label=label)
    layout = d.pareto.layout
    ax.set(title="Pareto front", xlabel=layout.xaxis.title.text, ylabel=layout.yaxis.title.text)
    ax.legend(fontsize=7)
    return fig
