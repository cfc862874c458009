"""``tunekit predict``: the scaling-law prediction for a script and budget.

It trains nothing, except the short LR probe of ``--prior measure``, sized by ``--trials`` and
``--max-steps`` as the search would size it (issue #14). With a law outside its domain it says that
``search`` would probe, without probing (a model too big for this machine is measured on the meta
device and never built).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tunekit.cli._options import console, max_steps_option, prior_option, script_options, script_spec
from tunekit.study.coordination import DEFAULT_TRIALS


@click.command()
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@max_steps_option
@prior_option
@click.option(
    "--tokens-per-sample",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Tokens per sample, instead of reading them from the first batch (makes D count tokens).",
)
@click.option(
    "--optimizers",
    default=None,
    metavar="A,B,...",
    help="Families to show ranges for [default: all; see tunekit optimizers].",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=DEFAULT_TRIALS,
    show_default=True,
    help="Trials of the search to size the LR probe of --prior measure by.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed of the LR probe.")
@click.option(
    "--metric", default="val_loss", show_default=True, help="The search's metric (scores a manual-optimization probe)."
)
@click.option("--direction", type=click.Choice(["minimize", "maximize"]), default="minimize", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@script_options
def predict(
    script: Path,
    max_steps: int,
    prior: str,
    tokens_per_sample: float | None,
    optimizers: str | None,
    trials: int,
    seed: int,
    metric: str,
    direction: str,
    fmt: str,
    **script_args: Any,
) -> None:
    """Show measured N, D, C, each law's LR and batch size, the LR probe, and the ranges and centres a search would use."""
    import json

    from tunekit.priors import MEASURE, plan, probe_request
    from tunekit.search_spaces.catalog import default_optimizers, default_schedules
    from tunekit.search_spaces.space import parse_names
    from tunekit.training.quiet import silence_lightning
    from tunekit.training.script import load_script

    silence_lightning()
    spec = script_spec(script, script_args)
    families = parse_names(optimizers, "optimizers")
    loaded = load_script(spec)
    batch = loaded.default_batch_size
    # Only --prior measure trains here; with a law outside its domain, predict says what search would do.
    probe = None
    if prior == MEASURE:
        probe = probe_request(
            trials,
            max_steps,
            default_schedules(),
            batch,
            seed=seed,
            manual_optimization=loaded.manual_optimization(batch),
            metric=metric,
            minimize=direction == "minimize",
        )
    result = plan(prior, loaded, max_steps, batch, tokens_per_sample=tokens_per_sample, families=families, probe=probe)
    if prior != MEASURE and not result.prior.record.get("in_domain", True):
        result.notes.append(
            f"tunekit search centres this run on a short LR probe (5% of its steps) instead; see it with "
            f"tunekit predict --prior {MEASURE} --trials N."
        )
    report = build_report(result, str(script))
    report["centres"] = centres(result, families or default_optimizers(), max_steps, batch)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        print_report(report)


def build_report(result: Any, script: str) -> dict:
    """The prediction as plain data: what ``--format json`` prints and the tables show."""
    from tunekit.priors._laws import half_life_tokens

    m = result.measurement
    out: dict[str, Any] = {"script": script, "measured": None, "laws": [], "fitted": None}
    if m is not None:
        unit = "tokens" if m.sequence else "samples"
        out["measured"] = {
            "n_params": m.n_params,
            "n_params_counts": m.params.describe(),
            "excluded": [name for name, _ in m.params.embeddings] + list(m.params.tied),
            "steps": m.steps,
            "batch_size": m.batch_size,
            "tokens_per_sample": m.tokens_per_sample,
            "tokens_source": m.tokens_source,
            "sequence_task": m.sequence,
            "D": m.tokens,
            "D_unit": unit,
            "D_source": f"{m.steps} steps x {m.batch_size} samples"
            + (f" x {m.tokens_per_sample:g} tokens" if m.sequence else ""),
            "n_layer": m.shape.n_layer,
            "d_model": m.shape.d_model,
            "flops_per_token": m.flops_per_token,
            "flops_source": m.flops_source,
            "C": m.compute,
        }
    from tunekit.priors import centre_for_batch, get_law

    for p in result.predictions:
        law = get_law(p.law)
        row: dict[str, Any] = {
            "law": p.law,
            "in_domain": p.in_domain,
            "lr": p.lr,
            "batch_tokens": p.batch_tokens,
            "batch_samples": (p.batch_tokens / m.tokens_per_sample) if p.batch_tokens and m.sequence else None,
            "source": law.source,
            "notes": list(p.notes),
        }
        if p.in_domain and m.batch_size:
            c = centre_for_batch(p, m)
            row["lr_at_run_batch"] = c.lr
            row["beta2_at_run_batch"] = c.beta2
            row["beta2_half_life_tokens"] = half_life_tokens(c.beta2, m.batch_tokens) if c.beta2 else None
        out["laws"].append(row)
    if result.fitted is not None:
        out["fitted"] = {k: v for k, v in result.fitted.items()}
    out["prior"] = {
        "name": result.prior.law,
        "centre_lr": result.prior.centre_lr,
        "span_scale": result.prior.span_scale,
        "derivation": result.centre.derivation,
        "record": result.prior.record,
    }
    out["families"] = [
        {
            "family": f.family,
            "param": f.param,
            "ratio": f.ratio,
            "centre": f.centre,
            "low": f.low,
            "high": f.high,
            "batch_rule": f.batch_rule,
            "source": f.source,
        }
        for f in result.families
    ]
    out["notes"] = list(result.notes)
    return out


def centres(result: Any, families: list[str], max_steps: int, batch: int | None) -> dict:
    """Where each predicted number comes from: the LR (the prior), each family's weight decay and the batch."""
    from tunekit.priors import batch_of_law
    from tunekit.search_spaces.centring import TAU_FRACTION, batch_centre, batch_choices
    from tunekit.search_spaces.space import SearchSpace, SpaceConfig

    choices = batch_choices(batch)
    centred_batch = batch_centre(batch, choices, batch_of_law(result.prior.record))
    config = SpaceConfig(
        optimizers=list(families),
        schedules=["wsd", "none"],
        centre_lr=result.prior.centre_lr,
        max_steps=max_steps,
        span_scale=result.prior.span_scale,
        batch_sizes=choices,
        default_batch_size=batch,
        centre_batch_size=centred_batch.value,
        decay_tau_fraction=TAU_FRACTION,
    )
    space = SearchSpace(config)
    decay = {}
    for family in space.families:
        centred = space.weight_decay_centre(family.name)
        if centred is not None:
            decay[family.name] = {"value": centred.value, "source": centred.source}
        elif "weight_decay" in family.space:
            decay[family.name] = {
                "value": family.defaults.get("weight_decay"),
                "source": "the family's default (L2 decay on the gradient: the timescale rule does not apply)",
            }
    return {
        "lr": {"value": result.prior.centre_lr, "source": result.centre.derivation},
        "batch_size": {"value": centred_batch.value, "source": centred_batch.source},
        "weight_decay": decay,
        "probe": result.prior.record.get("probe"),
    }


def _g(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def print_report(report: dict) -> None:
    from rich.table import Table

    out = console()
    m = report["measured"]
    if m is not None:
        t = Table(title=f"measured: {report['script']}", title_justify="left")
        for col in ("quantity", "value", "how"):
            t.add_column(col, overflow="fold")
        t.add_row("N (non-embedding params)", f"{m['n_params']:,}", m["n_params_counts"])
        batch = f"{m['batch_size']} samples" + (f" x {m['tokens_per_sample']:g} tokens" if m["sequence_task"] else "")
        t.add_row("batch per step", batch, m["tokens_source"])
        t.add_row(f"D ({m['D_unit']})", _g(m["D"]), m["D_source"])
        t.add_row("M (FLOPs per token)", _g(m["flops_per_token"]), m["flops_source"])
        t.add_row("C = M·D (FLOPs)", _g(m["C"]), "DeepSeek LLM's compute")
        out.print(t)
    if report["laws"]:
        t = Table(title="laws", title_justify="left")
        for col in (
            "law",
            "LR*",
            "B* tokens",
            "B* samples",
            "LR at this batch",
            "β2 at this batch",
            "domain",
            "source",
        ):
            t.add_column(col, overflow="fold")
        for row in report["laws"]:
            t.add_row(
                row["law"],
                _g(row["lr"]),
                _g(row["batch_tokens"]),
                _g(row["batch_samples"]),
                _g(row.get("lr_at_run_batch")),
                _g(row.get("beta2_at_run_batch")),
                "in" if row["in_domain"] else "[yellow]out[/]",
                row["source"],
            )
        out.print(t)
        for row in report["laws"]:
            for note in row["notes"]:
                out.print(f"  {row['law']}: {note}", highlight=False)
    if report["fitted"]:
        f = report["fitted"]
        out.print(
            f"fitted law: LR {f['lr']:.3g} (1σ x{10 ** f['lr_sigma_log10']:.2g})"
            + (f", B* {f['batch_tokens']:.3g}" if f.get("batch_tokens") else ""),
            highlight=False,
        )
    p = report["prior"]
    name = p["record"].get("file", p["name"])
    t = Table(title=f"search ranges with --prior {name}: centre AdamW {p['centre_lr']:.3g}", title_justify="left")
    for col in ("family", "LR vs AdamW", "centre", "range", "batch rule", "source"):
        t.add_column(col, overflow="fold")
    for f in report["families"]:
        ratio = f"{f['ratio']:g}x" if f["ratio"] is not None else "own scale"
        name = f["family"] if f["param"] == "lr" else f"{f['family']}.{f['param']}"
        t.add_row(name, ratio, _g(f["centre"]), f"[{_g(f['low'])}, {_g(f['high'])}]", f["batch_rule"], f["source"])
    out.print(t)
    out.print(f"centre: {p['derivation']}", highlight=False)
    _print_centres(out, report.get("centres"))
    for note in report["notes"]:
        out.print(f"[yellow]note:[/] {note}", highlight=False)


def _print_centres(out: Any, centres: dict | None) -> None:
    """The LR probe's curve and where the predicted point's numbers come from (issue #14)."""
    from rich.table import Table

    if not centres:
        return
    probe = centres.get("probe")
    if probe:
        t = Table(
            title=f"LR probe: {probe['steps_per_lr']} steps per LR, scored by {probe['score']}", title_justify="left"
        )
        t.add_column("AdamW LR")
        t.add_column("score")
        t.add_column("")
        for lr, value in probe["points"]:
            t.add_row(_g(lr), _g(value, 4), "")
        t.add_row(_g(probe["lr"]), "", "[bold]chosen centre[/]" + (" (edge of the range)" if probe["at_edge"] else ""))
        out.print(t)
        out.print(f"  the probe cost {probe['share']:.1%} of the search's steps", highlight=False)
    t = Table(title="the predicted point: where each number comes from", title_justify="left")
    for col in ("setting", "value", "from"):
        t.add_column(col, overflow="fold")
    t.add_row("AdamW LR", _g(centres["lr"]["value"]), centres["lr"]["source"])
    t.add_row("batch size", str(centres["batch_size"]["value"]), centres["batch_size"]["source"])
    for family, decay in centres["weight_decay"].items():
        t.add_row(f"{family}.weight_decay", _g(decay["value"]), decay["source"])
    out.print(t)
