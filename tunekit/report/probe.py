"""The report's LR-probe section (issue #14): the measured prior's curve and its chosen centre.

Drawn when the study's prior came from the probe (``--prior measure``, or a law outside its
domain): each probed AdamW LR against its score, and the centre the search was built around.
"""

from __future__ import annotations

import math
from typing import Any

from tunekit.report.data import ReportData

TITLE = "LR probe: the measured prior"


def probe_of(d: ReportData) -> dict | None:
    """The probe record stored with the study's prior, if it has one."""
    probe = d.prior.get("probe")
    return probe if isinstance(probe, dict) and probe.get("points") else None


def caption(probe: dict) -> str:
    return (
        f"{len(probe['points'])} AdamW runs of {probe['steps_per_lr']} steps, scored by {probe['score']} "
        f"(lower is better); centre {probe['lr']:.3g}"
        + (" at the edge of the probed range" if probe.get("at_edge") else "")
        + f"; {probe['share']:.1%} of the search's optimizer steps"
    )


def _points(probe: dict) -> tuple[list[float], list[float]]:
    finite = [(lr, v) for lr, v in probe["points"] if v is not None and math.isfinite(v)]
    return [lr for lr, _ in finite], [v for _, v in finite]


def probe_figure(d: ReportData) -> Any | None:
    """The plotly figure of the probe (HTML report), or None without a probe."""
    import plotly.graph_objects as go

    probe = probe_of(d)
    if probe is None:
        return None
    lrs, values = _points(probe)
    fig = go.Figure(go.Scatter(x=lrs, y=values, mode="lines+markers", name="probe runs"))
    fig.add_vline(x=probe["lr"], line_dash="dash", line_color="grey", annotation_text=f"centre {probe['lr']:.3g}")
    fig.update_layout(title=caption(probe), xaxis_title="AdamW learning rate", yaxis_title="score", height=380)
    fig.update_xaxes(type="log")
    return fig


def probe_png(d: ReportData) -> Any | None:
    """The matplotlib figure of the probe (Markdown report), or None without a probe."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    probe = probe_of(d)
    if probe is None:
        return None
    fig = Figure(figsize=(7, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    lrs, values = _points(probe)
    ax.plot(lrs, values, "o-", label="probe runs")
    ax.axvline(probe["lr"], color="grey", ls="--", lw=1, label=f"centre {probe['lr']:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("AdamW learning rate")
    ax.set_ylabel("score")
    ax.set_title(caption(probe), fontsize=8)
    ax.legend(fontsize=8)
    return fig
