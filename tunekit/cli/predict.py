"""``tunekit predict``: the scaling-law prediction for a script and budget; trains nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tunekit.cli._options import console, max_steps_option, prior_option, script_options, script_spec


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
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@script_options
def predict(
    script: Path,
    max_steps: int,
    prior: str,
    tokens_per_sample: float | None,
    optimizers: str | None,
    fmt: str,
    **script_args: Any,
) -> None:
    """Show measured N, D, C, each law's LR and batch size, and the ranges a search would use."""
    import json

    from tunekit.priors import plan
    from tunekit.search_spaces.space import parse_names
    from tunekit.training.quiet import silence_lightning
    from tunekit.training.script import load_script

    silence_lightning()
    spec = script_spec(script, script_args)
    families = parse_names(optimizers, "optimizers")
    loaded = load_script(spec)
    result = plan(
        prior,
        loaded,
        max_steps,
        loaded.default_batch_size,
        tokens_per_sample=tokens_per_sample,
        families=families,
    )
    report = build_report(result, str(script))
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
    for note in report["notes"]:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
