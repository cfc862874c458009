"""``tunekit law fit``: our own LR (and batch-size) law from tuned proxy studies."""

from __future__ import annotations

from pathlib import Path

import click

from tunekit.cli._options import console, output_option, storage_option
from tunekit.priors._fit import DEFAULT_TOLERANCE


@click.group()
def law() -> None:
    """Fit your own scaling law from studies of small proxies, then predict for the target.

    Workflow: tune two or three proxies (the same model at different widths or step budgets),
    fit, check with 'tunekit predict TARGET --prior law.yaml', then search the target narrowly
    with 'tunekit search TARGET --prior law.yaml'.
    """


@law.command()
@click.option(
    "--study",
    "studies",
    multiple=True,
    required=True,
    metavar="NAME",
    help="A tuned proxy study (repeat: two or more at different N or D).",
)
@storage_option
@output_option("Law file to write (use it with --prior FILE) [default: print it].")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0, min_open=True, max=1),
    default=DEFAULT_TOLERANCE,
    show_default=True,
    help="Near-best trials: within this relative distance of each study's best value.",
)
@click.option(
    "--family",
    default=None,
    metavar="NAME",
    help="Fit one optimizer family's trials only [default: every family with an LR ratio, on AdamW's scale].",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def fit(
    studies: tuple[str, ...], storage: str | None, output: Path | None, tolerance: float, family: str | None, fmt: str
) -> None:
    """Fit LR (and batch) power laws in N and D.

    Each study's optimum is read from its near-best trials (weighted, as Step Law reads its broad
    plateau); the optima are fitted by weighted least squares in log space, with standard errors
    and the residual. An exponent whose variable did not vary is fixed at Step Law's value.
    """
    import json
    import sys

    from tunekit.errors import BadInput
    from tunekit.priors._fit import fit_studies
    from tunekit.search_spaces.catalog import get_family
    from tunekit.study.law_data import read_study
    from tunekit.study.settings import open_study
    from tunekit.study.storage import open_storage, resolve_url

    if family is not None:
        get_family(family)
    if len(set(studies)) < 2:
        raise BadInput("a law needs at least two different studies; pass --study A --study B.")
    store = open_storage(resolve_url(storage))
    read = [read_study(*open_study(store, name), family=family) for name in dict.fromkeys(studies)]
    fitted = fit_studies(read, tolerance, family)
    command = "tunekit law fit " + " ".join(f"--study {s}" for s in dict.fromkeys(studies))
    if output is not None:
        command += f" -o {output}"
    text = fitted.to_yaml(command)
    if output is not None:
        output.write_text(text)
    if fmt == "json":
        import yaml

        click.echo(json.dumps(yaml.safe_load(text), indent=2))
        return
    if output is None:
        sys.stdout.write(text)
    _print_fit(fitted, output)


def _print_fit(fitted: object, output: Path | None) -> None:
    from rich.table import Table

    out = console()
    unit = fitted.units
    t = Table(title="study optima (near-best trials, weighted)", title_justify="left")
    for col in ("study", "N", f"D ({unit})", "LR* (AdamW-eq.)", "±1σ", "B*", "trials used", "best"):
        t.add_column(col)
    for p in fitted.studies:
        t.add_row(
            p.study,
            f"{p.n_params:.3g}",
            f"{p.tokens:.3g}",
            f"{p.lr:.3g}",
            f"x{10**p.sigma:.2g}",
            "-" if p.batch_tokens is None else f"{p.batch_tokens:.3g}",
            str(p.trials),
            f"{p.best_value:.4g}",
        )
    out.print(t)
    for label, pl in (("LR", fitted.lr), ("batch", fitted.batch)):
        if pl is None:
            out.print("batch: not fitted (fewer than two studies searched the batch size)", highlight=False)
            continue
        se = pl.stderr()
        terms = []
        for name, value in pl.exponents.items():
            var = "N" if name.startswith("n_") else "D"
            terms.append(
                f"{var}^{value:+.3f} ± {se[name]:.3f}" if name in pl.fitted else f"{var}^{value:+.3f} (fixed: Step Law)"
            )
        quality = f"residual {pl.residual_log10:.3f} decades over {pl.points} points"
        if pl.chi2_dof is not None:
            quality += f", chi²/dof {pl.chi2_dof:.2g}"
        else:
            quality += ", exact fit (no spare points: uncertainty from the studies' spread only)"
        out.print(f"{label}* = {10**pl.log10_coef:.3g} · " + " · ".join(terms) + f"; {quality}", highlight=False)
    # The prediction's own uncertainty where it is used: at the proxies, and beyond them.
    (n_lo, n_hi), (d_lo, d_hi) = fitted.domain["n_params"], fitted.domain["tokens"]
    middle = ((n_lo * n_hi) ** 0.5, (d_lo * d_hi) ** 0.5)
    for where, n, d in (("at the proxies", *middle), ("at 10x their largest N", 10 * n_hi, d_hi)):
        p = fitted.predict(n, d)
        out.print(
            f"LR* {where} (N={n:.3g}, D={d:.3g}): {p['lr']:.3g}, 1σ x{10 ** p['lr_sigma_log10']:.2g}", highlight=False
        )
    if output is not None:
        out.print(
            f"Wrote {output}. Predict with: tunekit predict SCRIPT --prior {output}; search with: "
            f"tunekit search SCRIPT --prior {output}",
            highlight=False,
        )
