"""LR schedules: each against its published closed form, library schedulers, and a real Lightning fit.

The reference formulas below are written out again from the papers and the authors' code cited at
each test, independently of ``tunekit.search_spaces.schedules``.
"""

from __future__ import annotations

import io
import itertools
import math

import pytest
import torch
from torch import nn

from tunekit.errors import BadInput
from tunekit.search_spaces import catalog, schedules
from tunekit.search_spaces.builtin_schedules import sgdr_restarts
from tunekit.search_spaces.catalog import get_schedule, list_schedules, multiplier, resolve_params, warmup_steps
from tunekit.search_spaces.schedule_plots import plot_schedule
from tunekit.training.lr_scheduler import build_lr_scheduler

SCHEDULE_NAMES = catalog.SCHEDULES.keys()

# --- Independent reference formulas -------------------------------------------------------------


def ref_warmup_steps(wf: float, total: int) -> int:
    """Warmup steps, the rule issue #10 asks for: rounded up, so any positive fraction warms up."""
    return min(total, math.ceil(round(wf * total, 9))) if wf > 0 else 0


def ref_warmup(t: int, w: int) -> float:
    """epfml/schedules-and-scaling wsd_schedule (Hägele et al. 2024): from 1% of peak, f = t/W + (1 - t/W)/100."""
    return t / w + (1 - t / w) / 100


def ref_progress(t: int, total: int, w: int) -> float:
    """Post-warmup progress p = (t - W) / (T - W) (tunekit's documented convention)."""
    return min(max((t - w) / (total - w), 0.0), 1.0)


def ref_wsd(t: int, total: int, wf: float, df: float, shape: str, r: float) -> float:
    """Hägele et al. 2024, §3: n_decay = floor(df T), stable until T - n_decay."""
    w = ref_warmup_steps(wf, total)
    if t < w:
        return ref_warmup(t, w)
    n_decay = math.floor(df * total)
    if t < total - n_decay:
        return 1.0
    if t >= total:
        return r
    x = (t - (total - n_decay)) / n_decay
    if shape == "linear":
        return r + (1 - r) * (1 - x)
    if shape == "cosine":
        return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * x))
    if shape == "1-sqrt":
        return r + (1 - r) * (1 - math.sqrt(x))
    assert shape == "square"
    return r + (1 - r) * (1 - x**2)


def ref_rex_paper(p: float) -> float:
    """Chen et al. 2021, REX eq.: f = (1 - p) / (1/2 + 1/2 (1 - p))."""
    return (1 - p) / (0.5 + 0.5 * (1 - p))


def ref_rex_code(p: float) -> float:
    """IvanVassi/REX_LR lr_scheduler.py (the authors' code): z / (0.1 + 0.9 z), z = 1 - p."""
    z = 1 - p
    return z / (1 - 0.9 + 0.9 * z)


def ref_sgdr(s: int, n: int, cycles: int, t_mult: int, eta_min: float) -> float:
    """Loshchilov & Hutter 2017 eq. 5, cycles T_i = T_0 t_mult^i with T_0 chosen so that sum T_i = n.

    Cycle starts are T_0 (t_mult^i - 1)/(t_mult - 1) (T_0 i for t_mult 1) rounded to the nearest step.
    """
    t0 = n / cycles if t_mult == 1 else n * (t_mult - 1) / (t_mult**cycles - 1)
    starts, acc = [0], 0.0
    for i in range(cycles):
        acc += t0 * t_mult**i
        starts.append(round(acc))
    if s >= n:
        return eta_min
    i = max(k for k in range(cycles) if starts[k] <= s)
    t_cur, t_i = s - starts[i], starts[i + 1] - starts[i]
    return eta_min + 0.5 * (1 - eta_min) * (1 + math.cos(math.pi * t_cur / t_i))


def check_all_steps(name: str, total: int, params: dict, ref) -> None:
    for t in range(total + 2):
        assert multiplier(name, t, total, params) == pytest.approx(ref(min(t, total)), abs=1e-12), f"step {t}"


# --- Each schedule against its closed form ------------------------------------------------------


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt", "square"])
@pytest.mark.parametrize("total", [37, 100, 1000])
@pytest.mark.parametrize("r", [0.0, 0.1])
def test_wsd_matches_hagele_formula(shape: str, total: int, r: float) -> None:
    """WSD, Hägele et al. 2024 §3: every step 0..T+1, all four decay shapes."""
    params = {"warmup_fraction": 0.05, "decay_fraction": 0.2, "decay_shape": shape, "final_lr_fraction": r}
    check_all_steps("wsd", total, params, lambda t: ref_wsd(t, total, 0.05, 0.2, shape, r))


def test_wsd_boundaries() -> None:
    """WSD 1-sqrt (Hägele et al. 2024), T=100, W=5, decay over the last 20 steps: exact phase edges."""
    p = {"warmup_fraction": 0.05, "decay_fraction": 0.2, "decay_shape": "1-sqrt"}
    m = {t: multiplier("wsd", t, 100, p) for t in range(101)}
    assert m[0] == pytest.approx(0.01)  # first step: 1% of peak, not 0
    assert m[4] == pytest.approx(4 / 5 + (1 / 5) / 100)  # last warmup step
    assert m[5] == 1.0  # end of warmup
    assert m[79] == 1.0 and m[80] == 1.0  # last stable step, start of decay (x = 0)
    assert m[81] == pytest.approx(1 - math.sqrt(1 / 20))
    assert m[99] == pytest.approx(1 - math.sqrt(19 / 20))  # last optimizer step
    assert m[100] == 0.0 and multiplier("wsd", 150, 100, p) == 0.0  # the budget, and past it


def test_wsd_decay_length_survives_float_error() -> None:
    """floor(0.29 * 100) must be 29 decay steps (0.29 * 100 == 28.999999999999996 in floating point)."""
    p = {"warmup_fraction": 0.0, "decay_fraction": 0.29, "decay_shape": "linear"}
    assert multiplier("wsd", 71, 100, p) == 1.0  # decay starts at T - 29 = 71 (x = 0)
    assert multiplier("wsd", 72, 100, p) == pytest.approx(1 - 1 / 29)  # with 28 steps this would be 1


@pytest.mark.parametrize("total", [50, 100, 333])
def test_rex_default_is_the_paper_form(total: int) -> None:
    """REX, Chen et al. 2021: f = (1-p)/(1/2 + 1/2(1-p)) with p over the post-warmup steps."""
    w = ref_warmup_steps(0.05, total)
    check_all_steps("rex", total, {}, lambda t: ref_warmup(t, w) if t < w else ref_rex_paper(ref_progress(t, total, w)))


def test_rex_beta_gives_the_authors_code_form_and_linear() -> None:
    """beta=0.1 is IvanVassi/REX_LR's z/(0.1+0.9z); beta=1 is linear decay (google/init2winit's form)."""
    total = 200
    for t in range(total + 1):
        p = t / total
        assert multiplier("rex", t, total, {"warmup_fraction": 0, "beta": 0.1}) == pytest.approx(ref_rex_code(p))
        assert multiplier("rex", t, total, {"warmup_fraction": 0, "beta": 1.0}) == pytest.approx(1 - p)
    # The paper's curve lies above linear and below the code's: REX keeps a high LR longer.
    assert ref_rex_code(0.5) > multiplier("rex", 100, 200, {"warmup_fraction": 0}) > 0.5


def test_rex_boundaries() -> None:
    """REX (Chen et al. 2021), T=100, W=10: p = (t - 10)/90."""
    assert multiplier("rex", 9, 100, {"warmup_fraction": 0.1}) == pytest.approx(0.9 + 0.1 / 100)
    assert multiplier("rex", 10, 100, {"warmup_fraction": 0.1}) == 1.0
    assert multiplier("rex", 55, 100, {"warmup_fraction": 0.1}) == pytest.approx(ref_rex_paper(0.5)) == 2 / 3
    assert multiplier("rex", 99, 100, {"warmup_fraction": 0.1}) == pytest.approx(ref_rex_paper(89 / 90))
    assert multiplier("rex", 100, 100, {"warmup_fraction": 0.1}) == 0.0


@pytest.mark.parametrize(
    ("total", "wf", "cycles", "t_mult"),
    [(70, 0.0, 3, 2), (100, 0.0, 4, 1), (100, 0.1, 3, 2), (1000, 0.05, 2, 3), (61, 0.02, 3, 1)],
)
def test_sgdr_matches_loshchilov_hutter(total: int, wf: float, cycles: int, t_mult: int) -> None:
    """SGDR, Loshchilov & Hutter 2017 eq. 5, with T_0 so that the last cycle ends at the budget."""
    w = ref_warmup_steps(wf, total)
    params = {"warmup_fraction": wf, "cycles": cycles, "t_mult": t_mult, "eta_min": 0.05}
    check_all_steps(
        "sgdr", total, params, lambda t: ref_warmup(t, w) if t < w else ref_sgdr(t - w, total - w, cycles, t_mult, 0.05)
    )


def test_sgdr_boundaries() -> None:
    """SGDR (Loshchilov & Hutter 2017) T=70, no warmup, 3 cycles x2: T_0 = 10, restarts at 10 and 30."""
    p = {"warmup_fraction": 0, "cycles": 3, "t_mult": 2}
    assert sgdr_restarts(70, 3, 2) == [0, 10, 30]
    assert multiplier("sgdr", 9, 70, p) == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 10)))
    assert multiplier("sgdr", 10, 70, p) == 1.0 and multiplier("sgdr", 30, 70, p) == 1.0
    assert multiplier("sgdr", 69, 70, p) == pytest.approx(0.5 * (1 + math.cos(math.pi * 39 / 40)))
    assert multiplier("sgdr", 70, 70, p) == 0.0


@pytest.mark.parametrize("cycles", [1, 2, 3, 4])
@pytest.mark.parametrize("t_mult", [1, 2, 3, 1.5])
def test_sgdr_never_restarts_right_before_the_end(cycles: int, t_mult: float) -> None:
    """The last cycle is the longest (>= n/cycles steps) and decays monotonically to eta_min at T."""
    for total in range(3, 400, 7):
        w = warmup_steps({"name": "sgdr", "warmup_fraction": 0.05}, total)
        starts = sgdr_restarts(total, cycles, t_mult, 0.05)
        assert starts[0] == w and starts == sorted(set(starts))
        assert total - starts[-1] >= (total - w) / cycles - 1
        p = {"warmup_fraction": 0.05, "cycles": cycles, "t_mult": t_mult}
        tail = [multiplier("sgdr", t, total, p) for t in range(starts[-1], total + 1)]
        assert tail[0] == 1.0 and tail[-1] == 0.0
        assert all(a >= b for a, b in itertools.pairwise(tail))


@pytest.mark.parametrize("r", [0.0, 0.1])
def test_cosine_matches_formula(r: float) -> None:
    """Cosine to a floor (Loshchilov & Hutter 2017 without restarts): r + (1-r)/2 (1 + cos(pi p))."""
    total, w = 120, 6
    check_all_steps(
        "cosine",
        total,
        {"final_lr_fraction": r},
        lambda t: (
            ref_warmup(t, w) if t < w else r + (1 - r) * 0.5 * (1 + math.cos(math.pi * ref_progress(t, total, w)))
        ),
    )
    p = {"warmup_fraction": 0.1, "final_lr_fraction": r}
    assert multiplier("cosine", 9, 100, p) == pytest.approx(0.901)  # last warmup step
    assert multiplier("cosine", 10, 100, p) == 1.0  # end of warmup = start of decay
    assert multiplier("cosine", 55, 100, p) == pytest.approx(r + (1 - r) * 0.5)
    assert multiplier("cosine", 99, 100, p) == pytest.approx(r + (1 - r) * 0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert multiplier("cosine", 100, 100, p) == pytest.approx(r)


@pytest.mark.parametrize("r", [0.0, 0.2])
def test_linear_matches_formula(r: float) -> None:
    """Linear decay (Defazio et al. 2023: 1 - t/T; Bergsma et al. 2025 D2Z), here r + (1-r)(1-p)."""
    total, w = 80, 4
    check_all_steps(
        "linear",
        total,
        {"final_lr_fraction": r},
        lambda t: ref_warmup(t, w) if t < w else r + (1 - r) * (1 - ref_progress(t, total, w)),
    )
    assert multiplier("linear", 100, 100, {"warmup_fraction": 0}) == 0.0
    assert multiplier("linear", 99, 100, {"warmup_fraction": 0}) == pytest.approx(0.01)


def test_constant_and_none() -> None:
    """constant: warmup then 1; none (Defazio et al. 2024, schedule-free): always 1, the optimizer warms up."""
    check_all_steps("constant", 40, {"warmup_fraction": 0.25}, lambda t: ref_warmup(t, 10) if t < 10 else 1.0)
    check_all_steps("none", 40, {"warmup_fraction": 0.25}, lambda t: 1.0)
    assert get_schedule("none").schedule_free and not any(s.schedule_free for s in list_schedules() if s.name != "none")
    assert warmup_steps({"name": "none", "warmup_fraction": 0.25}, 40) == 10
    assert build_lr_scheduler(_optimizer(), {"name": "none"}, 40) is None


# --- Library schedulers against the formulas ----------------------------------------------------


def _optimizer(*lrs: float) -> torch.optim.Optimizer:
    lrs = lrs or (1.0,)
    return torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs])


def _library_lrs(scheduler_cls, steps: int, **kwargs) -> list[float]:
    opt = _optimizer()
    sched = scheduler_cls(opt, **kwargs)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize(("t0", "t_mult", "cycles"), [(10, 2, 3), (25, 1, 4), (7, 3, 3)])
def test_sgdr_agrees_with_torch_cosine_annealing_warm_restarts(t0: int, t_mult: int, cycles: int) -> None:
    """torch CosineAnnealingWarmRestarts(T_0, T_mult, eta_min) implements Loshchilov & Hutter 2017.

    Without warmup and with a budget of whole cycles our sgdr must give the same LR at every step
    (at step T torch would restart; no optimizer step uses that value).
    """
    total = t0 * cycles if t_mult == 1 else t0 * (t_mult**cycles - 1) // (t_mult - 1)
    lib = _library_lrs(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts, total, T_0=t0, T_mult=t_mult, eta_min=0.05)
    p = {"warmup_fraction": 0, "cycles": cycles, "t_mult": t_mult, "eta_min": 0.05}
    ours = [multiplier("sgdr", t, total, p) for t in range(total)]
    assert ours == pytest.approx(lib, abs=1e-12)


def test_cosine_and_linear_agree_with_torch_after_warmup() -> None:
    """torch CosineAnnealingLR(T_max=T-W, eta_min) and LinearLR(1, r, T-W) follow our post-warmup clock."""
    total, w = 200, 20
    p = {"warmup_fraction": 0.1, "final_lr_fraction": 0.1}
    lib = _library_lrs(torch.optim.lr_scheduler.CosineAnnealingLR, total - w + 1, T_max=total - w, eta_min=0.1)
    assert [multiplier("cosine", w + k, total, p) for k in range(total - w + 1)] == pytest.approx(lib, abs=1e-9)
    lib = _library_lrs(
        torch.optim.lr_scheduler.LinearLR, total - w + 1, start_factor=1.0, end_factor=0.1, total_iters=total - w
    )
    assert [multiplier("linear", w + k, total, p) for k in range(total - w + 1)] == pytest.approx(lib, abs=1e-9)


def test_wsd_agrees_with_pytorch_optimizer_get_wsd_schedule() -> None:
    """pytorch_optimizer 4.1.0 get_wsd_schedule (1-sqrt cooldown, floor 0, no warmup) equals Hägele's WSD."""
    from pytorch_optimizer.lr_scheduler import get_wsd_schedule

    total = 100
    lib = _library_lrs(
        get_wsd_schedule,
        total,
        num_warmup_steps=0,
        num_stable_steps=80,
        num_decay_steps=20,
        min_lr_ratio=0.0,
        cooldown_type="1-sqrt",
    )
    p = {"warmup_fraction": 0, "decay_fraction": 0.2, "decay_shape": "1-sqrt"}
    assert [multiplier("wsd", t, total, p) for t in range(total)] == pytest.approx(lib, abs=1e-12)


def test_pytorch_optimizer_rex_scheduler_starts_at_zero() -> None:
    """pytorch_optimizer 4.1.0 REXScheduler has the paper's formula but its first step runs at LR 0.

    (Observed on pytorch_optimizer 4.1.0, and checked below.) From step 1 on it matches Chen et al. 2021's f(t/T); at step 0 it
    gives 0 instead of f(0) = 1, so the first update is wasted: the reason tunekit uses its own REX.
    """
    from pytorch_optimizer.lr_scheduler import REXScheduler

    total = 50
    lib = _library_lrs(REXScheduler, total, total_steps=total, max_lr=1.0, min_lr=0.0)
    ours = [multiplier("rex", t, total, {"warmup_fraction": 0}) for t in range(total)]
    assert lib[0] == 0.0 and ours[0] == 1.0
    assert lib[1:] == pytest.approx(ours[1:], abs=1e-12)
    assert ours == pytest.approx([ref_rex_paper(t / total) for t in range(total)], abs=1e-12)


# --- The registry itself: every schedule, present and future ------------------------------------

ALL = list(SCHEDULE_NAMES)


@pytest.mark.parametrize("name", ALL)
def test_every_schedule_is_a_bounded_multiplier(name: str) -> None:
    """In [0, 1] and finite at every step, 1 where warmup ends, for budgets from 1 step up."""
    schedule = get_schedule(name)
    for total in (1, 2, 3, 7, 64, 501):
        for wf in (0.0, 0.05, 0.2):
            params = {"warmup_fraction": wf}
            values = [multiplier(name, t, total, params) for t in range(total + 1)]
            assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), (total, wf)
            w = warmup_steps(name, total, params)
            if w < total and total >= 7:
                assert values[w] == 1.0
            if not schedule.schedule_free and w > 0:
                assert values[0] == pytest.approx(0.01)


@pytest.mark.parametrize("name", ALL)
def test_every_schedule_entry_is_complete(name: str) -> None:
    """Metadata present, defaults valid and inside the searched space, space values accepted."""
    s = get_schedule(name)
    assert s.description and "\n" not in s.description and s.source
    assert "warmup_fraction" in s.defaults and set(s.space) <= set(s.defaults)
    assert resolve_params(name, {}) == {
        k: pytest.approx(v) if not isinstance(v, str) else v for k, v in s.defaults.items()
    }
    for key, param in s.space.items():
        assert param.contains(s.defaults[key]), key
        for value in getattr(param, "choices", None) or (param.low, param.high):
            resolve_params(name, {key: value})
    assert get_schedule(name) in list_schedules(name) and len(list_schedules()) == len(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_schedule_rejects_bad_params(name: str) -> None:
    """Unknown key lists the valid keys; wrong type or out-of-range value names the parameter."""
    s = get_schedule(name)
    with pytest.raises(BadInput, match=r"valid parameters: .*warmup_fraction"):
        multiplier(name, 0, 10, {"warmup_fracton": 0.1})
    for key, default in s.defaults.items():
        bad_values = [3] if isinstance(default, str) else ["0.1", True, -1, float("nan")]
        for bad in bad_values:
            with pytest.raises(BadInput, match=f"'{key}'"):
                resolve_params(name, {key: bad})
    if any(k.endswith("fraction") for k in s.defaults):
        with pytest.raises(BadInput, match=r"\[0, 1\]"):
            resolve_params(name, {"warmup_fraction": 1.5})


@pytest.mark.parametrize("name", [n for n in ALL if not get_schedule(n).schedule_free])
def test_every_schedule_drives_a_torch_scheduler(name: str) -> None:
    """build_lr_scheduler: each group's LR is its own base LR times the multiplier, from step 0 on."""
    opt = _optimizer(0.1, 0.003)
    total = 30
    sched = build_lr_scheduler(opt, {"name": name, "warmup_fraction": 0.1}, total)
    for t in range(total + 1):
        m = multiplier(name, t, total, {"warmup_fraction": 0.1})
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 * m, 0.003 * m], abs=1e-15)
        opt.step()
        sched.step()


def test_registry_errors_and_glob() -> None:
    with pytest.raises(BadInput, match="choose from: wsd, rex, sgdr, cosine, linear, constant, none"):
        get_schedule("onecycle")
    with pytest.raises(BadInput, match="has no name"):
        multiplier({"decay_fraction": 0.2}, 0, 10)
    with pytest.raises(BadInput, match="warmup_fraction \\+ decay_fraction"):
        resolve_params("wsd", {"warmup_fraction": 0.3, "decay_fraction": 0.8})
    with pytest.raises(BadInput, match="'decay_shape' must be one of"):
        resolve_params("wsd", {"decay_shape": "exp"})
    with pytest.raises(BadInput, match="at least 1 optimizer step"):
        build_lr_scheduler(_optimizer(), {"name": "wsd"}, 0)
    with pytest.raises(ValueError, match="already registered"):
        catalog.SCHEDULES.add(get_schedule("wsd"))
    assert [s.name for s in list_schedules("*sine")] == ["cosine"]
    assert resolve_params("wsd", {"name": "wsd", "decay_fraction": 0.1})["decay_fraction"] == 0.1
    assert resolve_params("sgdr", {"t_mult": 2, "cycles": 2.0}) | {"t_mult": 2, "cycles": 2} == resolve_params(
        "sgdr", {"t_mult": 2, "cycles": 2}
    )


def test_a_new_registration_is_usable_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registered schedule needs nothing else: multiplier, checks and the torch adapter pick it up."""
    monkeypatch.setattr(catalog, "SCHEDULES", catalog.SCHEDULES.copy())
    catalog.SCHEDULES.add(
        schedules.Schedule(
            name="half",
            description="half the peak after warmup",
            source="test",
            fn=lambda step, total, **_: 0.5,
            space={},
            defaults={"warmup_fraction": 0.0},
            checks={"warmup_fraction": schedules.fraction},
        )
    )
    opt = _optimizer(0.2)
    build_lr_scheduler(opt, {"name": "half"}, 10)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    with pytest.raises(BadInput, match="valid parameters: warmup_fraction"):
        multiplier("half", 0, 10, {"x": 1})


# --- The torch adapter: first step, state_dict round trip ---------------------------------------


def test_first_optimizer_step_uses_multiplier_zero() -> None:
    """Not 0 (pytorch_optimizer's REXScheduler), not the post-warmup peak: multiplier(0)."""
    opt = _optimizer(0.5)
    build_lr_scheduler(opt, {"name": "rex"}, 100)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.01)
    opt = _optimizer(0.5)
    build_lr_scheduler(opt, {"name": "rex", "warmup_fraction": 0}, 100)
    assert opt.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("k", [3, 23, 40])
def test_state_dict_round_trip_mid_schedule(k: int) -> None:
    """Save after k steps, load into a fresh optimizer + scheduler: the following LRs are the same."""
    cfg = {"name": "wsd", "warmup_fraction": 0.1, "decay_fraction": 0.3, "decay_shape": "cosine"}
    total = 50
    opt = _optimizer(0.1, 0.02)
    sched = build_lr_scheduler(opt, cfg, total)
    for _ in range(k):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)  # plain values only: loads with weights_only=True
    buf.seek(0)

    fresh_opt = _optimizer(0.1, 0.02)
    fresh = build_lr_scheduler(fresh_opt, {"name": "wsd"}, 10)  # wrong budget and params: the state wins
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.last_epoch == k and fresh.get_last_lr() == pytest.approx(sched.get_last_lr())
    for t in range(k, total + 1):
        expected = [0.1 * multiplier(cfg, t, total), 0.02 * multiplier(cfg, t, total)]
        assert [g["lr"] for g in fresh_opt.param_groups] == pytest.approx(expected, abs=1e-15)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(expected, abs=1e-15)
        for o, s in ((opt, sched), (fresh_opt, fresh)):
            o.step()
            s.step()


# --- A real Lightning fit -----------------------------------------------------------------------


def _lightning_fit(cfg: dict, total: int, max_steps: int, n_batches: int, accumulate: int, tmp_path, ckpt=None):
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Recorder(L.Callback):
        """Records the LR of every group right before each optimizer step: the LR that step uses."""

        def __init__(self) -> None:
            self.steps: list[int] = []
            self.lrs: list[list[float]] = []

        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
            self.steps.append(trainer.global_step)
            self.lrs.append([g["lr"] for g in optimizer.param_groups])

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.layer(x), y)

        def configure_optimizers(self):
            opt = torch.optim.SGD(
                [{"params": [self.layer.weight], "lr": 0.1}, {"params": [self.layer.bias], "lr": 0.03}]
            )
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": build_lr_scheduler(opt, cfg, total), "interval": "step"},
            }

    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n_batches * 2, 4, generator=gen), torch.randn(n_batches * 2, 1, generator=gen))
    recorder = Recorder()
    trainer = L.Trainer(
        max_steps=max_steps,
        accumulate_grad_batches=accumulate,
        callbacks=[recorder],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), DataLoader(data, batch_size=2), ckpt_path=ckpt)
    return trainer, recorder


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("n_batches", "accumulate", "total"), [(8, 1, 20), (5, 2, 12)])
def test_lightning_applies_the_multiplier_at_every_optimizer_step(n_batches, accumulate, total, tmp_path) -> None:
    """Lightning fit, interval "step": the LR used by optimizer step t is base_lr * multiplier(t).

    Also with gradient accumulation and a dataloader shorter than the budget (several epochs).
    """
    cfg = {"name": "wsd", "warmup_fraction": 0.2, "decay_fraction": 0.3, "decay_shape": "1-sqrt"}
    trainer, rec = _lightning_fit(cfg, total, total, n_batches, accumulate, tmp_path)
    assert rec.steps == list(range(total))
    assert trainer.current_epoch >= 2  # the run spanned several epochs
    for t, lrs in zip(rec.steps, rec.lrs, strict=True):
        m = multiplier(cfg, t, total)
        assert lrs == pytest.approx([0.1 * m, 0.03 * m], abs=1e-15), f"optimizer step {t}"
    assert rec.lrs[0][0] == pytest.approx(0.001)  # 1% of peak at the first step


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_lightning_resume_continues_the_schedule(tmp_path) -> None:
    """Stop a 12-step trial after 6 steps, resume from the checkpoint: steps 6..11 follow the schedule."""
    cfg = {"name": "sgdr", "warmup_fraction": 0.1, "cycles": 2, "t_mult": 1}
    trainer, _ = _lightning_fit(cfg, 12, 6, 3, 1, tmp_path)
    trainer.save_checkpoint(tmp_path / "half.ckpt")
    _, rec = _lightning_fit(cfg, 12, 12, 3, 1, tmp_path, ckpt=tmp_path / "half.ckpt")
    assert rec.steps == list(range(6, 12))
    assert [lrs[0] for lrs in rec.lrs] == pytest.approx([0.1 * multiplier(cfg, t, 12) for t in range(6, 12)])


# --- Plots --------------------------------------------------------------------------------------


def test_plot_writes_a_png(tmp_path) -> None:
    path = tmp_path / "wsd.png"
    assert plot_schedule("wsd", {"decay_shape": "1-sqrt"}, 500, path) is None
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_plot_in_the_terminal() -> None:
    text = plot_schedule("sgdr", None, 300)
    lines = text.splitlines()
    assert lines[0].startswith("sgdr: warmup_fraction=0.05") and len(lines) == 11
    assert "█" in text and lines[1].startswith("1.0 │")
    with pytest.raises(BadInput, match="choose from"):
        plot_schedule("cosin", None, 10)


@pytest.mark.parametrize(
    ("wf", "total", "expected"),
    [(0.05, 10, 1), (0.1, 5, 1), (0.25, 2, 1), (0.05, 30, 2), (0.07, 100, 7), (0.001, 50, 1), (0.0, 10, 0)],
)
def test_warmup_is_rounded_up_never_to_even(wf: float, total: int, expected: int) -> None:
    """Issue #10, defect 8: W = ceil(fraction x T), at least 1 step when the fraction is positive.

    Python 3's round rounds half to even: round(0.05 * 10) = round(0.5) = 0 and round(0.1 * 5) = 0,
    which silently dropped the warmup; 0.05 * 30 = 1.5 -> ceil 2. Expected counts are worked out by hand.
    """
    assert round(wf * total) <= expected  # the old rule, for the record: it gave 0 for the first three
    assert warmup_steps({"name": "cosine", "warmup_fraction": wf}, total) == expected
    assert warmup_steps({"name": "none", "warmup_fraction": wf}, total) == expected
    if expected:
        assert multiplier("cosine", 0, total, {"warmup_fraction": wf}) == pytest.approx(1 / 100)
