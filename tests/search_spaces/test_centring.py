"""Weight decay and batch size centred with the LR (issue #14): the timescale rule and the batch choice."""

from __future__ import annotations

import pytest

from tunekit.search_spaces.centring import TAU_FRACTION, batch_centre, weight_decay_centre
from tunekit.search_spaces.params import FloatRange
from tunekit.search_spaces.space import SearchSpace, SpaceConfig


def test_weight_decay_keeps_tau_a_fixed_fraction_of_the_run():
    """tau = 1 / (lr * wd) in steps (Wang & Aitchison 2025): here 2 x 200 steps at lr 1e-2 gives wd 0.25."""
    wide = FloatRange(1e-4, 10.0, log=True)
    centred = weight_decay_centre(1e-2, 200, wide)
    assert centred.value == pytest.approx(1 / (1e-2 * TAU_FRACTION * 200))
    assert 1 / (1e-2 * centred.value) == pytest.approx(TAU_FRACTION * 200)
    assert "timescale rule" in centred.source
    assert weight_decay_centre(1e-2, 400, wide).value == pytest.approx(centred.value / 2)  # twice the run: half
    clamped = weight_decay_centre(1e-5, 200, FloatRange(1e-3, 0.3, log=True))
    assert clamped.value == 0.3 and "clamped" in clamped.source


def test_batch_centre_is_the_choice_nearest_the_laws_batch():
    assert batch_centre(32, [16, 32, 64], 25.4).value == 32
    assert batch_centre(32, [16, 32, 64], 20.0).value == 16
    assert batch_centre(32, [16, 32, 64], 1000.0).value == 64
    assert batch_centre(32, [16, 32, 64], None).value == 32
    assert batch_centre(None, None, 25.0).value is None


def config(**changes) -> SpaceConfig:
    base = dict(optimizers=["adamw", "sgd", "lion"], schedules=["wsd"], centre_lr=1e-2, max_steps=200)
    base.update(changes)
    return SpaceConfig(batch_sizes=[16, 32, 64], default_batch_size=32, **base)


def test_predicted_points_take_the_centred_weight_decay_and_batch():
    space = SearchSpace(config(decay_tau_fraction=TAU_FRACTION, centre_batch_size=64))
    adamw, sgd, lion = (space.predicted_point(32, f) for f in ("adamw", "sgd", "lion"))
    assert adamw["adamw.weight_decay"] == pytest.approx(1 / (1e-2 * 400), rel=1e-3)
    assert lion["lion.weight_decay"] == pytest.approx(1 / (0.2e-2 * 400), rel=1e-3)  # Lion: LR / 5, decay x 5
    assert sgd["sgd.weight_decay"] == 5e-4  # L2 decay on the gradient: the family's default
    assert adamw["batch_size"] == 64


def test_studies_from_before_keep_the_family_defaults():
    space = SearchSpace(config())
    point = space.predicted_point(32, "adamw")
    assert point["adamw.weight_decay"] == 0.1 and point["batch_size"] == 32
