"""One colour per optimizer family and per drawn trial, the same in the HTML and the PNG figures."""

from __future__ import annotations

# Plotly's "Plotly" qualitative sequence (also fine on matplotlib's white axes).
COLOURS = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52")
PRUNED_OPACITY = 0.35


def family_colours(families: list[str]) -> dict[str, str]:
    """A colour per family, in the study's family order (so a family keeps its colour across figures)."""
    return {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(families)}


def trial_colour(index: int) -> str:
    """The colour of the ``index``-th drawn learning curve."""
    return COLOURS[index % len(COLOURS)]
