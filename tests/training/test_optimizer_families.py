"""Every optimizer family in the registry, tested from the registry itself (timm's ``tests/test_optim.py``
style): a new registration is trained, grouped and checked here without a line added.

Each family trains a tiny language model (embedding, 2-D hidden layer, LayerNorm, head) for a few
dozen steps with a real Lightning fit (``run_fit``), at the centre of its LR range for an AdamW
centre LR of 1e-2. Grouping rules are checked structurally and by behaviour (ndim < 2 parameters do
not decay). Numeric claims about implementations are checked against the published update or a
reference implementation, cited in each test.
"""

from __future__ import annotations

import copy
import math

import lightning.pytorch as pl
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tunekit.errors import BadInput
from tunekit.recipes import Recipe
from tunekit.search_spaces.catalog import get_family, list_families
from tunekit.training.fit import run_fit
from tunekit.training.optimization import create_optimizer, instantiate, optimizer_class
from tunekit.training.param_groups import group_parameters
from tunekit.training.script import LoadedScript, ScriptSpec

FAMILIES = [f.name for f in list_families()]
VOCAB, DIM = 32, 16
CENTRE_LR = 1e-2  # an AdamW LR this tiny model trains well with in a few dozen steps
STEPS = 40


class TinyLM(pl.LightningModule):
    """Embedding -> 2-D hidden Linear -> LayerNorm -> head, learning the next-token map y = 3x + 1 (mod V)."""

    def __init__(self, tied: bool = False):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, DIM)
        self.hidden = nn.Linear(DIM, DIM)
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB)
        if tied:
            self.head.weight = self.emb.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(torch.relu(self.hidden(self.emb(x)))))

    def loss(self, batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x).reshape(-1, VOCAB), y.reshape(-1))

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss(batch))

    def configure_optimizers(self):  # the user's own; tunekit replaces it in run_fit
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TiedLM(TinyLM):
    def __init__(self):
        super().__init__(tied=True)


class TinyData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 32):
        super().__init__()
        self.batch_size = batch_size
        x = torch.randint(0, VOCAB, (2048, 8), generator=torch.Generator().manual_seed(0))
        y = (3 * x + 1) % VOCAB
        self.train_set, self.val_set = TensorDataset(x[:1792], y[:1792]), TensorDataset(x[1792:], y[1792:])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256)


def centre_recipe(name: str, max_steps: int = STEPS, **training) -> Recipe:
    """The family at the centre of its LR range(s) and its defaults: the study's predicted point."""
    family = get_family(name)
    optimizer = {"name": name, **{hp: r.centre(CENTRE_LR) for hp, r in family.lr_params.items()}}
    schedule = {"name": "none" if family.schedule_free else "wsd", "warmup_fraction": 0.1}
    return Recipe.from_dict(
        {
            "tunekit_recipe": 1,
            "optimizer": optimizer,
            "schedule": schedule,
            "training": {
                "max_steps": max_steps,
                "batch_size": 32,
                "gradient_clip_val": 1.0,
                "evaluations": 1,
                **training,
            },
        }
    )


def by_id(params) -> set[int]:
    return {id(p) for p in params}


# --- grouping rules: what each family's rule promises --------------------------------------------


def check_decay_matrices(model: nn.Module, groups: list[dict], hparams: dict) -> None:
    """nanoGPT's rule: tensors with ndim >= 2 decay at the family's weight_decay, the rest not at all."""
    for group in groups:
        expected = hparams["weight_decay"] if all(p.ndim >= 2 for p in group["params"]) else 0.0
        assert group["weight_decay"] == expected
        assert len({p.ndim >= 2 for p in group["params"]}) == 1


def check_muon_hidden(model: nn.Module, groups: list[dict], hparams: dict) -> None:
    """KellerJordan/Muon: exactly the 2-D hidden weights in the Muon group; embedding, head, biases
    and norm gains with AdamW; no decay on ndim < 2."""
    muon = [p for g in groups if g["use_muon"] for p in g["params"]]
    adam = [p for g in groups if not g["use_muon"] for p in g["params"]]
    assert by_id(muon) == {id(model.hidden.weight)}
    assert by_id([model.emb.weight, model.head.weight]) <= by_id(adam)
    assert by_id([model.hidden.bias, model.norm.weight, model.norm.bias, model.head.bias]) <= by_id(adam)
    for group in groups:
        if any(p.ndim < 2 for p in group["params"]):
            assert group["weight_decay"] == 0.0 and all(p.ndim < 2 for p in group["params"])
        else:
            assert group["weight_decay"] == hparams["weight_decay"]


RULE_CHECKS = {"decay_matrices": check_decay_matrices, "muon_hidden": check_muon_hidden}


# --- every family ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model_cls", [TinyLM, TiedLM], ids=["untied", "tied"])
@pytest.mark.parametrize("name", FAMILIES)
def test_family_trains_with_a_real_fit(name: str, model_cls: type) -> None:
    """A few dozen optimizer steps of a real Lightning fit lower the validation loss."""
    script = LoadedScript(ScriptSpec("tiny_lm.py"), model_cls, TinyData)
    recipe = centre_recipe(name)
    pl.seed_everything(recipe.training.seed, verbose=False)
    model, data = model_cls(), TinyData()
    with torch.no_grad():
        before = float(model.loss(data.val_set.tensors))
    result = run_fit(recipe, script, "val_loss", accelerator="cpu")
    assert result.steps == STEPS
    assert math.isfinite(result.value) and result.value < 0.8 * before, (before, result.history)


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("name", FAMILIES)
def test_param_groups_follow_the_family_rule(name: str, tied: bool) -> None:
    family = get_family(name)
    assert family.grouping in RULE_CHECKS, f"add a check for grouping rule {family.grouping!r}"
    model = TinyLM(tied=tied)
    recipe = centre_recipe(name)
    hparams = dict(recipe.optimizer.hparams)
    groups = group_parameters(family.grouping, model, hparams)
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len(by_id(grouped)) and by_id(grouped) == by_id(model.parameters())
    RULE_CHECKS[family.grouping](model, groups, hparams)


@pytest.mark.parametrize("name", FAMILIES)
def test_ndim_below_two_never_decays(name: str) -> None:
    """Behaviour, not configuration: with zero gradients and a large weight decay, two steps leave
    biases and norm gains exactly where they were and shrink the matrices (for families that decay).
    This also catches an implementation that decays 1-D tensors on its own (MARS's weight_decay_1d)."""
    family = get_family(name)
    torch.manual_seed(0)
    model = TinyLM()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)  # LayerNorm starts at exactly 1 and 0: move it off the trivial values
    before = copy.deepcopy(model)
    overrides = {"weight_decay": 0.5} if "weight_decay" in family.defaults else {}
    hparams = family.resolve(overrides)
    optimizer = instantiate(family, group_parameters(family.grouping, model, hparams), hparams, max_steps=STEPS)
    if hasattr(optimizer, "train"):
        optimizer.train()
    for _ in range(2):
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        optimizer.step()
    if hasattr(optimizer, "eval"):
        optimizer.eval()
    for (pname, p), p0 in zip(model.named_parameters(), before.parameters(), strict=True):
        if p.ndim < 2:
            assert torch.equal(p, p0), f"{name}: {pname} changed"
        elif overrides:
            assert p.norm() < p0.norm(), f"{name}: {pname} did not decay"


def test_registry_entries_are_complete() -> None:
    """Each entry carries what ``tunekit optimizers`` shows and what the space builder samples."""
    for family in list_families():
        assert family.description and family.source and family.implementation
        assert "lr" in family.defaults and "lr" in family.lr_params
        optimizer_class(family)  # the implementation imports
        for hp in family.space:
            resolved = family.resolve({})
            value = resolved[hp] if hp in resolved else resolved["betas"][int(hp[-1]) - 1]
            # 0 (no decay, the schedule-free defaults) cannot lie in a log range; it is sampled instead.
            # None: a budget-derived beta (AdEMAMix's beta3 fraction) keeps the written beta by default.
            sampled = value == 0 or (value is None and hp in family.budget_half_lives)
            assert family.space[hp].contains(value) or sampled, f"{family.name}.{hp}: default {value} outside"


def test_optimizers_command_lists_every_family() -> None:
    from tunekit.cli import main

    result = CliRunner().invoke(main, ["optimizers"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for family in list_families():
        assert family.name in result.output
    assert "own scale" in result.output and "0.2x" in result.output  # muon, lion


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_family_lists_the_registered_ones() -> None:
    with pytest.raises(BadInput) as err:
        get_family("adamx")
    assert all(name in str(err.value) for name in FAMILIES)
    with pytest.raises(BadInput, match=r"did you mean .adamw.\?\); choose from: adamw, sgd,"):
        Recipe.from_dict(
            {
                "tunekit_recipe": 1,
                "optimizer": {"name": "adamx"},
                "schedule": {"name": "wsd"},
                "training": {"max_steps": 10},
            }
        )


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_hyperparameter_lists_the_valid_ones(name: str) -> None:
    family = get_family(name)
    with pytest.raises(BadInput) as err:
        family.resolve({"learning_rate": 1e-3})
    assert all(key in str(err.value) for key in family.defaults)


# --- Muon: routing and the update, against references ---------------------------------------------


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.fc = nn.Linear(8, 8)
        self.classifier = nn.Linear(8, 4)


class RawPosGPT(nn.Module):
    """A GPT with a raw 2-D positional table (nanoGPT-style ``pos_emb = nn.Parameter(T, d)``)."""

    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB, DIM)
        self.pos_emb = nn.Parameter(torch.zeros(8, DIM))
        self.attn = nn.MultiheadAttention(DIM, 2)
        self.mlp = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)


class TinyViT(nn.Module):
    """Patch-embedding conv (stride = patch), a raw class token and positional table, blocks, head."""

    def __init__(self, patch_linear: bool = False):
        super().__init__()
        self.patch = nn.Linear(3 * 4 * 4, DIM) if patch_linear else nn.Conv2d(3, DIM, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embedding = nn.Parameter(torch.zeros(1, 17, DIM))
        self.blocks = nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, 10)


class HeadFirstLM(nn.Module):
    """An untied LM that registers its head before its blocks, with a positional table whose shape
    equals the hidden layers' (d x d): names and registration order both mislead."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, DIM)
        self.pos = nn.Embedding(DIM, DIM)
        self.out = nn.Linear(DIM, VOCAB, bias=False)
        self.blocks = nn.Sequential(nn.Linear(DIM, DIM), nn.Linear(DIM, DIM))


def muon_split(model: nn.Module) -> tuple[set[int], set[int]]:
    groups = group_parameters("muon_hidden", model, {"weight_decay": 0.1})
    return (
        by_id(p for g in groups if g["use_muon"] for p in g["params"]),
        by_id(p for g in groups if not g["use_muon"] for p in g["params"]),
    )


def test_muon_takes_every_conv_but_the_first_and_leaves_the_classifier_to_adamw() -> None:
    """KellerJordan/Muon README: "for a ConvNet, you should use Muon to optimize all the convolutional
    filters except the first one, and AdamW to optimize everything else" (issue #10, defect 1)."""
    model = ConvNet()
    muon, adam = muon_split(model)
    assert muon == by_id([model.conv2.weight, model.fc.weight])
    assert by_id([model.conv.weight, model.classifier.weight, model.bn.weight, model.conv.bias]) <= adam


def test_muon_leaves_a_raw_positional_table_to_adamw() -> None:
    """KellerJordan/Muon README: "embeddings, classifier heads, and hidden gains/biases should be
    optimized using standard AdamW"; a raw 2-D pos_emb Parameter is an embedding (issue #10, defect 1)."""
    model = RawPosGPT()
    muon, adam = muon_split(model)
    assert by_id([model.pos_emb, model.tok_emb.weight, model.head.weight]) <= adam
    assert muon == by_id([model.attn.in_proj_weight, model.attn.out_proj.weight, model.mlp.weight])


@pytest.mark.parametrize("patch_linear", [False, True])
def test_muon_leaves_a_vit_patch_embedding_and_tables_to_adamw(patch_linear: bool) -> None:
    """A ViT's patch embedding is its input layer (the first conv, or a linear on raw patches) and its
    class token and positional table are embeddings: all AdamW (KellerJordan/Muon README's rules)."""
    model = TinyViT(patch_linear)
    muon, adam = muon_split(model)
    assert by_id([model.patch.weight, model.cls_token, model.pos_embedding, model.head.weight]) <= adam
    assert muon == by_id([model.blocks[0].weight, model.blocks[2].weight])


def test_muon_finds_an_untied_head_registered_first() -> None:
    model = HeadFirstLM()
    muon, adam = muon_split(model)
    assert id(model.out.weight) in adam and by_id([model.tok.weight, model.pos.weight]) <= adam
    assert id(model.blocks[0].weight) in muon


def test_muon_tied_head_is_the_head_whatever_the_registration_order() -> None:
    model = HeadFirstLM()
    model.out.weight = model.tok.weight
    muon, adam = muon_split(model)
    assert muon == by_id(m.weight for m in model.blocks)  # the last Linear is a hidden layer here
    assert adam == by_id([model.tok.weight, model.pos.weight, *(m.bias for m in model.blocks)])


def test_muon_split_can_be_overridden_by_the_module() -> None:
    model = TinyLM()
    model.tunekit_adam_params = ["hidden.weight"]
    muon, adam = muon_split(model)
    assert not muon and id(model.hidden.weight) in adam
    model.tunekit_adam_params = ["hiden.*"]
    with pytest.raises(BadInput, match="hiden"):
        muon_split(model)


def test_muon_step_matches_torch_muon_and_adamw() -> None:
    """Reference: ``torch.optim.Muon`` (Keller Jordan's update: Nesterov, 5 Newton-Schulz steps with
    (3.4445, -4.7750, 2.0315), lr scaled by sqrt(max(1, rows/cols)), decoupled decay) for the hidden
    matrix, ``torch.optim.AdamW`` for the rest, over three steps with momentum state."""
    family = get_family("muon")
    hp = family.resolve({"lr": 0.05, "adamw_lr": 2e-3, "weight_decay": 0.1})
    torch.manual_seed(0)
    model = TinyLM()
    model.hidden = nn.Linear(DIM, 3 * DIM)  # a rectangular matrix exercises the scaling
    model.norm = nn.LayerNorm(3 * DIM)
    model.head = nn.Linear(3 * DIM, VOCAB)
    ref = copy.deepcopy(model)
    ours = instantiate(family, group_parameters(family.grouping, model, hp), hp)
    rest = [p for n, p in ref.named_parameters() if n != "hidden.weight"]
    torch_muon = torch.optim.Muon([ref.hidden.weight], lr=0.05, weight_decay=0.1, momentum=hp["momentum"])
    torch_adamw = torch.optim.AdamW(
        [
            {"params": [p for p in rest if p.ndim >= 2], "weight_decay": 0.1},
            {"params": [p for p in rest if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=2e-3,
        betas=tuple(hp["adamw_betas"]),
        eps=hp["adamw_eps"],
    )
    x = torch.randint(0, VOCAB, (16, 8))
    for _ in range(3):
        for m, opts in ((model, [ours]), (ref, [torch_muon, torch_adamw])):
            for opt in opts:
                opt.zero_grad()
            m.loss((x, (3 * x + 1) % VOCAB)).backward()
            for opt in opts:
                opt.step()
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=2e-5, rtol=1e-4, msg=name)


# --- Lion and AdEMAMix against the published formulas ---------------------------------------------


def test_lion_step_matches_the_published_update() -> None:
    """Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2: c = b1*m + (1-b1)*g; w <- w(1 - lr*wd) - lr*sign(c);
    m <- b2*m + (1-b2)*g."""
    family = get_family("lion")
    hp = family.resolve({"lr": 1e-2, "weight_decay": 0.5})
    b1, b2 = hp["betas"]
    w = nn.Parameter(torch.randn(4, 3))
    opt = instantiate(family, [{"params": [w]}], hp)
    ref, m = w.detach().clone(), torch.zeros(4, 3)
    for _ in range(3):
        g = torch.randn(4, 3)
        w.grad = g.clone()
        opt.step()
        c = b1 * m + (1 - b1) * g
        ref = ref * (1 - 1e-2 * 0.5) - 1e-2 * torch.sign(c)
        m = b2 * m + (1 - b2) * g
        torch.testing.assert_close(w.detach(), ref)


def test_create_optimizer_gives_the_family_the_step_budget() -> None:
    """The recipe's max_steps reaches ``create`` (AdEMAMix's warmups span the trial's budget)."""
    optimizer = create_optimizer(TinyLM(), centre_recipe("ademamix", max_steps=77))
    assert all(group["t_alpha_beta3"] == 77 for group in optimizer.param_groups)


def test_ademamix_warms_alpha_and_beta3_up_over_the_budget() -> None:
    """Reference: apple/ml-ademamix ``linear_warmup_scheduler`` (alpha) and
    ``linear_hl_warmup_scheduler`` (beta3, linear in half-life space from beta1), with
    T_alpha = T_beta3 = the run's length (Pagliardini et al. 2024)."""

    def f(beta: float) -> float:
        return math.log(0.5) / math.log(beta) - 1

    def hl_warmup(step: int, beta_end: float, beta_start: float, warmup: int) -> float:
        a = min(step / warmup, 1.0)
        return math.pow(0.5, 1 / ((1 - a) * f(beta_start) + a * f(beta_end) + 1))

    family = get_family("ademamix")
    hp = family.resolve({})
    with pytest.raises(ValueError, match="max_steps"):
        instantiate(family, [{"params": [nn.Parameter(torch.zeros(2))]}], hp)
    opt = instantiate(family, [{"params": [nn.Parameter(torch.zeros(2))]}], hp, max_steps=400)
    group = opt.param_groups[0]
    assert group["t_alpha_beta3"] == 400
    b1, _, b3 = hp["betas"]
    for step in (1, 50, 200, 399, 400, 1000):
        assert opt.schedule_alpha(group["t_alpha_beta3"], step, hp["alpha"]) == pytest.approx(
            hp["alpha"] * min(step / 400, 1.0)
        )
        assert opt.schedule_beta3(group["t_alpha_beta3"], step, b1, b3) == pytest.approx(
            hl_warmup(step, b3, b1, 400), rel=1e-9
        )


def test_optimizers_explain_prints_each_parameter_with_its_group() -> None:
    """``tunekit optimizers --explain``: TinyRegression's first Linear is its input layer, the last its head."""
    from pathlib import Path

    from tunekit.cli import main

    script = Path(__file__).resolve().parents[1] / "scripts" / "tiny_regression.py"
    result = CliRunner().invoke(main, ["optimizers", "--explain", str(script)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 5}
    first, last = [name for name in rows if name.endswith(".weight") and "x" in rows[name].split("│")[2]]
    assert "input layer" in rows[first] and "AdamW" in rows[first]
    assert "head" in rows[last] and "│ no " in rows[last]
