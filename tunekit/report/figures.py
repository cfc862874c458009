"""The report's interactive figures (plotly), one function per section, each from a ``ReportData``.

``optuna.visualization`` draws the importances; its optimization-history and intermediate-values
plots know nothing of optimizer families, pruned-trial fading or LR schedules, so those are drawn
here on plotly directly.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tunekit.report.data import ReportData, TrialView, multiplier_curve, quiet_small_regimes
from tunekit.report.palette import PRUNED_OPACITY, family_colours, trial_colour

PRIOR_TRACE = "prior's LR"  # name of the predicted-LR marker trace in the LR figure
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}


def history(d: ReportData) -> go.Figure:
    """Each finished trial's value by trial number, coloured by family, with the best so far."""
    colours = family_colours(d.families)
    fig = go.Figure()
    for family in d.families:
        for state, symbol in (("COMPLETE", "circle"), ("PRUNED", "x")):
            members = [t for t in d.trials if t.family == family and t.state == state and t.last_value is not None]
            if members:
                fig.add_trace(
                    go.Scatter(
                        x=[t.number for t in members],
                        y=[t.last_value for t in members],
                        mode="markers",
                        name=family if state == "COMPLETE" else f"{family} (pruned: last value)",
                        legendgroup=family,
                        marker={"color": colours[family], "symbol": symbol, "size": 9},
                        opacity=1.0 if state == "COMPLETE" else PRUNED_OPACITY,
                        text=[t.label for t in members],
                        hovertemplate="trial %{x}: %{y:.4g}<br>%{text}<extra></extra>",
                    )
                )
    for n, (family, xs, ys) in enumerate(_best_so_far(d)):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name="best so far (colour: its family)",
                legendgroup="best",
                showlegend=n == 0,
                line={"color": colours.get(family, "black"), "shape": "hv", "width": 2.5},
                hovertemplate=f"best so far: %{{y:.4g}} ({family})<extra></extra>",
            )
        )
    fig.update_layout(title="Optimization history", xaxis_title="trial", yaxis_title=d.metric, **LAYOUT)
    return fig


def family_schedule(d: ReportData) -> go.Figure:
    """The family x schedule heat map of best values, each cell labelled with its trial counts."""
    cells = d.grid()
    families = [f for f in d.families if any(k[0] == f for k in cells)]
    schedules = [s for s in d.schedules if any(k[1] == s for k in cells)]
    z, text = [], []
    for f in families:
        row_z, row_text = [], []
        for s in schedules:
            cell = cells.get((f, s))
            row_z.append(cell.best if cell else None)
            row_text.append("" if cell is None else f"{_fmt(cell.best)}<br>{cell.caption()}")
        z.append(row_z)
        text.append(row_text)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=schedules,
            y=families,
            text=text,
            texttemplate="%{text}",
            colorscale="Viridis_r" if d.minimize else "Viridis",
            colorbar={"title": {"text": f"best {d.metric}"}},
            hoverongaps=False,
        )
    )
    fig.update_layout(title="Family x schedule: best value, trials, pruned", **LAYOUT)
    fig.update_yaxes(automargin=True, autorange="reversed")  # families top-down in the study's order
    return fig


def metric_vs_lr(d: ReportData) -> go.Figure:
    """Final value against peak LR per family (log x over the searched range), the prior's LR marked."""
    colours = family_colours(d.families)
    families = [f for f in d.families if any(t.family == f and t.lr for t in d.finished())]
    cols = min(3, len(families))
    rows = math.ceil(len(families) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=families, horizontal_spacing=0.08)
    values = [t.last_value for t in d.finished() if t.last_value is not None and math.isfinite(t.last_value)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    for i, family in enumerate(families):
        row, col = i // cols + 1, i % cols + 1
        for state, symbol in (("COMPLETE", "circle"), ("PRUNED", "x")):
            members = [
                t for t in d.trials if t.family == family and t.state == state and t.lr and t.last_value is not None
            ]
            fig.add_trace(
                go.Scatter(
                    x=[t.lr for t in members],
                    y=[t.last_value for t in members],
                    mode="markers",
                    name=f"{family} {state.lower()}",
                    showlegend=False,
                    marker={"color": colours[family], "symbol": symbol, "size": 9},
                    opacity=1.0 if state == "COMPLETE" else PRUNED_OPACITY,
                    text=[f"trial {t.number}: {t.label}" for t in members],
                    hovertemplate="lr %{x:.3g}: %{y:.4g}<br>%{text}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        prediction = d.predictions.get(family)
        if prediction is None:
            continue
        fig.add_trace(
            go.Scatter(
                x=[prediction.lr, prediction.lr],
                y=[low, high],
                mode="lines",
                name=PRIOR_TRACE,
                legendgroup="prior",
                showlegend=i == 0,
                line={"color": "grey", "dash": "dash"},
                hovertemplate=f"prior ({d.prior.get('law')}): lr {prediction.lr:.3g}<extra>{family}</extra>",
            ),
            row=row,
            col=col,
        )
        # The x axis spans exactly the searched range: an optimum at its edge is plain to see.
        span = math.log10(prediction.high / prediction.low)
        x_range = [math.log10(prediction.low) - 0.03 * span, math.log10(prediction.high) + 0.03 * span]
        fig.update_xaxes(type="log", range=x_range, title_text="peak LR", row=row, col=col)
        fig.update_yaxes(title_text=d.metric if col == 1 else None, row=row, col=col)
    fig.update_layout(
        title="Final value against LR per family (x: the searched range; dashed: the prior's prediction)",
        height=320 * rows + 80,
        **LAYOUT,
    )
    return fig


def learning_curves(d: ReportData, k: int) -> go.Figure:
    """Reported values against step for the top-k trials (pruned ones faded), and their LR multipliers."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.65, 0.35],
        vertical_spacing=0.06,
        subplot_titles=(f"{d.metric} at each validation", "LR multiplier from the schedule"),
    )
    for i, t in enumerate(d.curve_trials(k)):
        name = f"trial {t.number} {t.label}" + (" (pruned)" if t.state == "PRUNED" else "")
        style = _curve_style(t, trial_colour(i))
        fig.add_trace(
            go.Scatter(
                x=[s for s, _ in t.curve],
                y=[v for _, v in t.curve],
                mode="lines+markers",
                name=name,
                legendgroup=str(t.number),
                **style,
            ),
            row=1,
            col=1,
        )
        steps, multipliers = multiplier_curve(t)
        fig.add_trace(
            go.Scatter(
                x=steps, y=multipliers, mode="lines", name=name, legendgroup=str(t.number), showlegend=False, **style
            ),
            row=2,
            col=1,
        )
    fig.update_xaxes(title_text="optimizer step", row=2, col=1)
    fig.update_yaxes(title_text=d.metric, row=1, col=1)
    fig.update_yaxes(title_text="multiplier", range=[-0.03, 1.05], row=2, col=1)
    fig.update_layout(title=f"Learning curves of the top {k} trials and the pruned ones", height=640, **LAYOUT)
    return fig


def importances(d: ReportData) -> list[tuple[str, go.Figure | str]]:
    """Per scope (the study, then each family) Optuna's importance figure, or why there is none."""
    import optuna

    out: list[tuple[str, Any]] = []
    for scope, entry in d.importances.items():
        if isinstance(entry, str):
            out.append((scope, entry))
            continue
        study, params = entry
        with quiet_small_regimes():
            fig = optuna.visualization.plot_param_importances(study, params=params)
        fig.update_layout(title=f"Hyperparameter importances: {scope}", height=max(300, 28 * len(fig.data[0].y) + 120))
        out.append((scope, fig))
    return out


def _curve_style(t: TrialView, colour: str) -> dict:
    if t.state == "PRUNED":
        return {"line": {"color": colour, "dash": "dot"}, "opacity": PRUNED_OPACITY}
    return {"line": {"color": colour}}


def _best_so_far(d: ReportData) -> list[tuple[str, list[int], list[float]]]:
    """The best-so-far line as runs ``(family of the best, trial numbers, values)``: a run reaches
    the trial that beats it, and the next run starts with the drop there, so the line is unbroken."""
    runs: list[tuple[str, list[int], list[float]]] = []
    previous = None
    for number, best in d.best_so_far():
        if best is not previous:
            if previous is not None:  # the old run reaches this trial; the new one drops from there
                runs[-1][1].append(number)
                runs[-1][2].append(previous.value)
            runs.append((best.family, [number] if previous else [], [previous.value] if previous else []))
            previous = best
        runs[-1][1].append(number)
        runs[-1][2].append(best.value)
    return runs


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
