"""The bundled example scripts follow the model-script contract and actually learn."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import lightning
import lightning.pytorch as pl
import pytest
import torch

pytestmark = pytest.mark.slow  # end to end: real CLI runs (issue #13)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# name -> (LightningModule class, LightningDataModule class, default batch size)
SCRIPTS = {
    "charlm": ("CharTransformer", "CharDataModule", 32),
    "shapes": ("ShapesCNN", "ShapesDataModule", 64),
}


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by path, the way tunekit does."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tunekit_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def defined_subclasses(module: ModuleType, base: type) -> list[type]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__ == module.__name__
    ]


def make_trainer(max_steps: int) -> pl.Trainer:
    return pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        val_check_interval=max_steps,
        check_val_every_n_epoch=None,
    )


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_contract(name: str) -> None:
    module = load_example(name)
    model_name, dm_name, batch_size = SCRIPTS[name]

    modules = defined_subclasses(module, pl.LightningModule)
    datamodules = defined_subclasses(module, pl.LightningDataModule)
    assert [cls.__name__ for cls in modules] == [model_name]
    assert [cls.__name__ for cls in datamodules] == [dm_name]

    model = modules[0]()  # buildable with no arguments
    assert isinstance(model.configure_optimizers(), torch.optim.Optimizer)
    default_batch = inspect.signature(datamodules[0]).parameters["batch_size"].default
    assert default_batch == batch_size
    assert datamodules[0](batch_size=8).batch_size == 8


def test_charlm_batch_is_integer_tokens_and_head_is_tied() -> None:
    module = load_example("charlm")
    dm = module.CharDataModule(batch_size=8, seq_len=16)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.long and y.dtype == torch.long
    assert x.shape == (8, 16) and y.shape == (8, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one position
    assert 0 <= int(x.min()) and int(x.max()) < module.VOCAB_SIZE

    model = module.CharTransformer()
    assert model.head.weight is model.tok_emb.weight
    assert model(x).shape == (8, 16, module.VOCAB_SIZE)


def test_charlm_encode_maps_each_character_to_its_id() -> None:
    """The vectorised encode (issue #11) gives the ids of the per-character mapping, unknowns included."""
    module = load_example("charlm")
    text = module.load_corpus()[:20000] + "caf\u00e9 \x7f\u20ac\U0001f600\t\n~"
    expected = torch.tensor([module._CHAR_TO_ID.get(c, module.UNK_ID) for c in text], dtype=torch.long)
    assert torch.equal(module.encode(text), expected)
    assert module.encode("").shape == (0,)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_data_does_not_depend_on_global_seed(name: str) -> None:
    module = load_example(name)
    dm_cls = getattr(module, SCRIPTS[name][1])
    sets = []
    for seed in (0, 1):
        lightning.seed_everything(seed, verbose=False)
        dm = dm_cls()
        dm.setup("fit")
        sets.append((dm.train_set.tensors, dm.val_set.tensors))
    for a, b in zip(sets[0], sets[1], strict=True):
        assert all(torch.equal(t, u) for t, u in zip(a, b, strict=True))


@pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning")
@pytest.mark.parametrize(("name", "max_steps", "min_drop"), [("charlm", 40, 1.0), ("shapes", 100, 0.2)])
def test_training_lowers_val_loss(name: str, max_steps: int, min_drop: float) -> None:
    module = load_example(name)
    model_name, dm_name, _ = SCRIPTS[name]
    lightning.seed_everything(0, verbose=False)
    model = getattr(module, model_name)()
    dm = getattr(module, dm_name)()
    trainer = make_trainer(max_steps)

    initial = trainer.validate(model, datamodule=dm, verbose=False)[0]["val_loss"]
    trainer.fit(model, datamodule=dm)  # with the script's own configure_optimizers
    final = float(trainer.callback_metrics["val_loss"])

    assert trainer.global_step == max_steps
    assert final < initial - min_drop, (initial, final)
    if name == "shapes":
        assert float(trainer.callback_metrics["val_acc"]) > 0.35  # chance is 0.25
