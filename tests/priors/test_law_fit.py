"""``tunekit law fit``: the fit recovers known exponents from studies built with a known optimum.

Studies are real Optuna studies in a real SQLite file, with tunekit settings and trials created by
``optuna.trial.create_trial`` carrying a validated recipe in ``tunekit.recipe``, as real trials do.
The loss of a trial is a convex bowl in log LR (Step Law's broad plateau) centred on the known
optimum, so the fitted law must give that optimum's exponents back.
"""

from __future__ import annotations

import math

import optuna
import pytest
import yaml
from click.testing import CliRunner

from tunekit.cli import main
from tunekit.errors import BadInput
from tunekit.priors import _laws, make_prior
from tunekit.priors._fit import (
    fit_studies,
    half_width,
    load_law,
    near_best_weights,
    weighted_log_mean,
)
from tunekit.recipes import Recipe
from tunekit.search_spaces.space import SpaceConfig
from tunekit.study.law_data import read_study
from tunekit.study.records import RECIPE_ATTR
from tunekit.study.settings import StudySettings, open_study
from tunekit.study.storage import open_storage
from tunekit.training.script import ScriptSpec

SEQ = 32  # tokens per sample of the synthetic studies


def true_lr(n: float, d: float, a: float = 0.5, b: float = -0.5, c: float = 0.25) -> float:
    return a * n**b * d**c


def make_study(
    storage,
    name: str,
    n: float,
    steps: int,
    batch: int,
    optimum,
    *,
    family: str = "adamw",
    batches=(None,),
    sequence: bool = True,
) -> None:
    """A tunekit study of 13 LRs x len(batches) trials; loss = 2 + (log10 lr/lr*)^2 (+ a batch bowl).

    The prior record is what every tunekit prior stores: N, and D in tokens (or samples).
    """
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize")
    per_sample = SEQ if sequence else 1
    record = {"law": "none", "lr": 1e-3, "n_params": int(n), "batch_size": batch}
    if sequence:
        record.update({"tokens": float(steps * batch * SEQ), "tokens_per_sample": float(SEQ)})
    else:
        record["samples"] = float(steps * batch)
    space = SpaceConfig([family], ["wsd"], 1e-3, steps, span_scale=10.0)
    StudySettings(ScriptSpec(f"/nonexistent/{name}.py"), "val_loss", "minimize", space, record).save(study)
    # AdamW 1x; SGD 10x (tunekit's choice); MARS 6e-3 / 6e-4 (AGI-Arena/MARS GPT-2 small configs).
    ratio = {"adamw": 1.0, "sgd": 10.0, "mars": 6e-3 / 6e-4}[family]
    for bs in batches:
        b = bs or batch
        d = steps * b * per_sample
        lr_star, b_star = optimum(n, d)
        for k in range(-6, 7):
            lr = lr_star * 10 ** (k / 8)
            value = 2 + math.log10(lr / lr_star) ** 2
            if bs is not None:
                value += 0.5 * math.log10(b * per_sample / b_star) ** 2
            recipe = Recipe.from_dict(
                {
                    "tunekit_recipe": 1,
                    "optimizer": {"name": family, "lr": lr * ratio},
                    "schedule": {"name": "wsd"},
                    "training": {"max_steps": steps, "batch_size": b},
                }
            ).to_dict()
            study.add_trial(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState.COMPLETE, value=value, user_attrs={RECIPE_ATTR: recipe}
                )
            )


@pytest.fixture
def store(storage_url):
    return open_storage(storage_url)


def read(store, *names, family=None):
    return [read_study(*open_study(store, n), family=family) for n in names]


def test_fit_recovers_the_width_exponent(store):
    """Three widths at one budget: the N exponent is fitted, D's is fixed at Step Law's."""
    for name, n in (("w1", 1e5), ("w2", 4e5), ("w3", 1.6e6)):
        make_study(store, name, n, 200, 32, lambda n, d: (true_lr(n, d), None))
    law = fit_studies(read(store, "w1", "w2", "w3"))
    assert law.lr.fitted == ("n_exponent",)
    assert law.lr.exponents["n_exponent"] == pytest.approx(-0.5, abs=0.02)
    assert law.lr.exponents["d_exponent"] == _laws.STEPLAW_LR_D_EXP
    assert law.lr.residual_log10 < 0.02
    assert law.batch is None and law.units == "tokens"
    # Each study's optimum is where the bowl is centred.
    for p in law.studies:
        assert p.lr == pytest.approx(true_lr(p.n_params, p.tokens), rel=0.05)


def test_fit_recovers_both_exponents_and_predicts_beyond_the_proxies(store):
    """Widths and budgets vary: both exponents are fitted; the prediction extrapolates with its uncertainty."""
    opt = lambda n, d: (true_lr(n, d, 2.0, -0.6, 0.3), None)  # noqa: E731
    for name, n, steps in (("a", 1e5, 100), ("b", 4e5, 100), ("c", 1e5, 400), ("d", 4e5, 400), ("e", 2e5, 200)):
        make_study(store, name, n, steps, 16, opt)
    law = fit_studies(read(store, "a", "b", "c", "d", "e"))
    assert set(law.lr.fitted) == {"n_exponent", "d_exponent"}
    assert law.lr.exponents["n_exponent"] == pytest.approx(-0.6, abs=0.03)
    assert law.lr.exponents["d_exponent"] == pytest.approx(0.3, abs=0.03)
    # The uncertainty reflects the plateau (each optimum is read to ~0.1 decade) over 0.6 decades of N and D.
    se = law.lr.stderr()
    assert 0.01 < se["n_exponent"] < 0.25 and 0.01 < se["d_exponent"] < 0.25
    target = law.predict(4e6, 2000 * 16 * SEQ)
    assert target["lr"] == pytest.approx(true_lr(4e6, 2000 * 16 * SEQ, 2.0, -0.6, 0.3), rel=0.15)
    assert target["notes"] and "outside the fitted N range" in target["notes"][0]


def test_fit_recovers_the_batch_law_when_batch_was_searched(store):
    """B*(D) = 3 D^0.5 tokens: two budgets, batch searched over three sizes."""
    opt = lambda n, d: (true_lr(n, d), 3 * d**0.5)  # noqa: E731
    make_study(store, "s", 1e5, 100, 16, opt, batches=(8, 16, 32))
    make_study(store, "l", 1e5, 1600, 16, opt, batches=(8, 16, 32))
    law = fit_studies(read(store, "s", "l"))
    assert law.batch is not None and law.batch.fitted == ("d_exponent",)
    assert law.batch.exponents["d_exponent"] > 0  # grows with D, from a coarse 3-point batch grid


def test_family_ratio_puts_sgd_trials_on_adamw_scale(store):
    for name, n in (("g1", 1e5), ("g2", 1e6)):
        make_study(store, name, n, 200, 32, lambda n, d: (true_lr(n, d), None), family="sgd")
    law = fit_studies(read(store, "g1", "g2"))
    assert law.lr.exponents["n_exponent"] == pytest.approx(-0.5, abs=0.02)
    assert law.studies[0].lr == pytest.approx(true_lr(1e5, 200 * 32 * SEQ), rel=0.05)
    with pytest.raises(BadInput, match="no complete trial"):
        fit_studies(read(store, "g1", "g2", family="adamw"))


def test_law_fit_divides_mars_trials_by_its_reference_ratio(store):
    """Issue #10, defect 2: MARS trials run at 10x AdamW's LR (AGI-Arena/MARS GPT-2 configs, 6e-3 vs
    6e-4); `law fit` must divide by that ratio to put them on AdamW's scale."""
    for name, n in (("m1", 1e5), ("m2", 1e6)):
        make_study(store, name, n, 200, 32, lambda n, d: (true_lr(n, d), None), family="mars")
    law = fit_studies(read(store, "m1", "m2"))
    assert law.studies[0].lr == pytest.approx(true_lr(1e5, 200 * 32 * SEQ), rel=0.05)
    assert law.lr.exponents["n_exponent"] == pytest.approx(-0.5, abs=0.02)


def test_near_best_weights_and_point_uncertainty():
    w = near_best_weights([1.0, 1.005, 1.01, 1.03], minimize=True, tolerance=0.02)
    assert w[0] == 1.0 and 0 < w[2] < w[1] < 1 and w[3] == 0.0
    assert near_best_weights([0.9, 0.8], minimize=False, tolerance=0.02) == [1.0, 0.0]
    mean, sigma = weighted_log_mean([1e-3, 1e-2], [1.0, 1.0])
    assert mean == pytest.approx(-2.5) and sigma > 0.3
    assert half_width(0.0) == 3.0 and half_width(2.0) == 10.0


def test_cli_fit_writes_a_law_that_priors_use(store, tmp_path):
    for name, n in (("p1", 1e5), ("p2", 4e5), ("p3", 1.6e6)):
        make_study(store, name, n, 200, 32, lambda n, d: (true_lr(n, d), None))
    out = tmp_path / "law.yaml"
    args = ["law", "fit", "--study", "p1", "--study", "p2", "--study", "p3", "-o", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "N^-0.50" in result.output and "residual" in result.output
    text = out.read_text()
    assert text.startswith("# tunekit law") and "tunekit law fit --study p1" in text
    data = yaml.safe_load(text)
    assert data["tunekit_law"] == 1 and isinstance(data["lr"]["coef"], float)
    law = load_law(out)
    assert law.lr.exponents["n_exponent"] == pytest.approx(-0.5, abs=0.02)

    from test_priors import StubScript, TinyLM, token_batches

    # TinyLM: N = 88; 200 steps x 32 x 16 tokens. The studies' batch is 32 x 32 tokens, so the
    # centre is the law's LR moved by sqrt(512 / 1024).
    prior = make_prior(str(out), StubScript(lambda: TinyLM(tied=True), token_batches), 200, 32)
    expected = law.predict(88, 200 * 32 * 16)["lr"] * math.sqrt(0.5)
    assert prior.law == "fitted" and prior.centre_lr == pytest.approx(expected, rel=1e-3)
    assert prior.record["file"] == str(out)
    assert 0.3 <= prior.span_scale <= 1.0  # narrower than a published law's 10x


def test_cli_fit_errors_are_one_sentence(store, tmp_path):
    make_study(store, "only", 1e5, 200, 32, lambda n, d: (true_lr(n, d), None))
    one = CliRunner().invoke(main, ["law", "fit", "--study", "only"])
    assert one.exit_code == 2 and "at least two different studies" in one.output
    make_study(store, "same", 1e5, 200, 32, lambda n, d: (true_lr(n, d), None))
    same = CliRunner().invoke(main, ["law", "fit", "--study", "only", "--study", "same"])
    assert same.exit_code == 2 and "same N and D" in same.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("hello: 1\n")
    with pytest.raises(BadInput, match="not a tunekit law file"):
        load_law(bad)


def test_search_with_a_fitted_law_centres_and_records_it(store, tmp_path):
    """End to end: fit on (non-sequence) proxy studies, then search the tiny script with --prior law.yaml."""
    from conftest import TINY

    for name, n in (("t1", 50), ("t2", 800)):
        make_study(store, name, n, 100, 16, lambda n, d: (true_lr(n, d), None), sequence=False)
    law_file = tmp_path / "law.yaml"
    fitted = CliRunner().invoke(main, ["law", "fit", "--study", "t1", "--study", "t2", "-o", str(law_file)])
    assert fitted.exit_code == 0, fitted.output
    assert yaml.safe_load(law_file.read_text())["units"] == "samples"
    args = ["search", str(TINY), "--study", "target", "--trials", "1", "--max-steps", "10", "--evaluations", "1"]
    result = CliRunner().invoke(main, [*args, "--prior", str(law_file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    study, settings = open_study(store, "target")
    assert settings.prior["law"] == "fitted" and settings.prior["file"] == str(law_file)
    # TinyRegression: Linear(8, 16) + LayerNorm(16) + Linear(16, 1) = 193 parameters, less the head's
    # 16 weights (never in N, issue #10); 10 steps x 16 samples.
    assert settings.prior["n_params"] == 177 and settings.prior["samples"] == 160
    expected = load_law(law_file).predict(177, 160)["lr"]  # same batch as the proxies: no transfer
    assert settings.space.centre_lr == pytest.approx(expected, rel=1e-3)
    first = study.get_trials()[0]
    assert first.params["adamw.lr"] == pytest.approx(settings.space.centre_lr)
    assert first.user_attrs[RECIPE_ATTR]["prior"]["law"] == "fitted"
