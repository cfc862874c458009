"""A script that trains when imported is refused at once, naming the line (issue #15)."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main
from tunekit.errors import BadInput
from tunekit.training.script import ScriptSpec, load_script

BODY = TINY.read_text()


def unguarded(call: str) -> str:
    return BODY + f"\n\n{call}\n"


@pytest.mark.parametrize(
    "tail, what, line_offset",
    [
        (
            "trainer = pl.Trainer(max_epochs=1000)\ntrainer.fit(TinyRegression(), datamodule=TinyData())",
            "Trainer.fit",
            1,
        ),
        (
            "def main():\n    pl.Trainer(max_epochs=5).validate(TinyRegression(), datamodule=TinyData())\n\n\nmain()",
            "Trainer.validate",
            1,
        ),
        (
            "from lightning.pytorch.cli import LightningCLI\n\nLightningCLI(TinyRegression, TinyData)",
            "LightningCLI(...)",
            2,
        ),
    ],
)
def test_unguarded_training_is_refused_while_loading(tail, what, line_offset, write_script, storage_url, tmp_path):
    path = write_script(unguarded(tail))
    first_line = BODY.count("\n") + 3  # the tail starts after two blank lines
    start = time.monotonic()
    result = CliRunner().invoke(main, ["search", str(path), "--trials", "1"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"calls {what} when it is imported (line {first_line + line_offset})" in message, message
    assert 'put that code under if __name__ == "__main__": and run again.' in message
    assert time.monotonic() - start < 60  # refused, not trained (1000 epochs would take far longer)
    assert not (tmp_path / "tunekit.db").exists()


def test_guarded_script_loads_and_entry_points_work_afterwards(write_script):
    import lightning.pytorch as pl

    fit = pl.Trainer.fit
    path = write_script(
        unguarded(
            'if __name__ == "__main__":\n    pl.Trainer(max_epochs=1000).fit(TinyRegression(), datamodule=TinyData())'
        )
    )
    loaded = load_script(ScriptSpec(str(path)))
    assert loaded.model_cls.__name__ == "TinyRegression"
    assert pl.Trainer.fit is fit  # restored after the import


def test_refusal_restores_the_entry_points(write_script):
    import lightning.pytorch as pl

    fit = pl.Trainer.fit
    with pytest.raises(BadInput, match="calls Trainer.fit when it is imported"):
        load_script(ScriptSpec(str(write_script(unguarded("pl.Trainer().fit(TinyRegression())")))))
    assert pl.Trainer.fit is fit
