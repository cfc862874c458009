"""Drawing a schedule's LR multiplier: a PNG (matplotlib, imported only here) or a terminal plot."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tunekit.errors import BadInput
from tunekit.search_spaces.catalog import get_schedule, resolve_params, warmup_steps
from tunekit.search_spaces.schedules import Schedule


def plot_schedule(
    name: str, params: Mapping[str, Any] | None, steps: int, path: str | os.PathLike[str] | None = None
) -> str | None:
    """Draw the multiplier curve of a schedule over ``steps`` optimizer steps.

    Args:
        name: a schedule name.
        params: parameter overrides (``None`` for the defaults).
        steps: the budget (total optimizer steps) to draw.
        path: where to write a PNG (matplotlib, Agg canvas, no pyplot state). Without it, a small
            text plot is returned for the terminal.

    Returns:
        The text plot when ``path`` is None, else None.

    Raises:
        BadInput: unknown schedule, invalid parameters, or ``steps < 1``.
    """
    resolved = resolve_params(name, params)
    schedule = get_schedule(name)
    if steps < 1:
        raise BadInput(f"--steps must be at least 1, got {steps}.")
    values = [schedule.multiplier(t, steps, resolved) for t in range(steps + 1)]
    title = f"{name}: " + ", ".join(f"{k}={v}" for k, v in resolved.items())
    if path is None:
        return _text_plot(values, title)
    _png_plot(values, resolved, schedule, steps, title, os.fspath(path))
    return None


# --- Plots --------------------------------------------------------------------------------------

_BLOCKS = " ▁▂▃▄▅▆▇█"


def _text_plot(values: list[float], title: str, width: int = 60, height: int = 8) -> str:
    """A bar plot in eighth-block characters, one column per sampled step."""
    steps = len(values) - 1
    cols = min(width, steps + 1)
    samples = [values[round(c * steps / max(cols - 1, 1))] for c in range(cols)]
    rows = []
    for r in range(height - 1, -1, -1):
        line = ""
        for v in samples:
            eighths = round(min(max(v, 0.0), 1.0) * height * 8) - r * 8
            line += _BLOCKS[min(max(eighths, 0), 8)]
        label = "1.0 " if r == height - 1 else ("0.0 " if r == 0 else "    ")
        rows.append(f"{label}│{line}")
    rows.append("    └" + "─" * cols)
    rows.append(f"     0{str(steps).rjust(cols - 1)}  (steps)")
    return "\n".join([title, *rows])


def _png_plot(
    values: list[float], params: Mapping[str, Any], schedule: Schedule, steps: int, title: str, path: str
) -> None:
    # The object-oriented API with an Agg canvas: no pyplot, no global backend switch in the caller.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(range(steps + 1), values, lw=1.6)
    if not schedule.schedule_free and (w := warmup_steps(schedule.name, steps, params)) > 0:
        ax.axvline(w, color="grey", ls=":", lw=1, label=f"end of warmup ({w})")
        ax.legend(loc="lower left", fontsize=8)
    ax.set(xlabel="optimizer step", ylabel="LR multiplier", ylim=(-0.02, 1.05), xlim=(0, steps))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
