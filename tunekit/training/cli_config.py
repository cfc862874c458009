"""``search SCRIPT --config cli.yaml``: model and data arguments from a LightningCLI config (issue #15).

Read forms, per section (``model``, ``data``), as LightningCLI writes them:

    model: {hidden: 32}                                       # flat: LightningCLI(Model, Data)
    model: {class_path: Model, init_args: {hidden: 32}}       # subclass mode: LightningCLI()

A ``class_path`` names a class defined in the script: by name (``Model``), or qualified by the
script's module as LightningCLI sees it (``__main__.Model``, ``model.Model`` for ``model.py``,
``pkg.model.Model``). tunekit never imports the path: it only picks that class from the script it
already loaded, so a config, like a recipe, cannot make tunekit run other code. Keys are checked
against the constructor's signature, as jsonargparse does (one sentence naming the key and the
valid ones); the values' types are checked by the constructor itself, when the class is built.

``trainer``, ``optimizer``, ``lr_scheduler``, ``seed_everything`` and ``ckpt_path`` are read but not
used: tunekit sets the Trainer, the optimizer, the schedule and the seed of every trial, so a config
that a user trains with is accepted as it is, with one warning naming what is not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.training.script import LoadedScript, ScriptSpec, init_arguments
from tunekit.yaml_files import read_yaml

SECTIONS = ("model", "data")
NOT_USED = ("trainer", "optimizer", "lr_scheduler", "seed_everything", "ckpt_path")


@dataclass(frozen=True)
class ConfigSection:
    """One of ``model``/``data``: the class it names (None: the script's own) and its arguments."""

    class_name: str | None
    class_path: str | None  # as written, so that export writes the same form back
    init_args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CliConfig:
    path: str
    sections: dict[str, ConfigSection]
    not_used: tuple[str, ...] = ()

    def apply(self, spec: ScriptSpec) -> ScriptSpec:
        """``spec`` with the config's classes and arguments; ``--model``/``--model-arg`` values win."""
        changes: dict[str, Any] = {"class_paths": dict(spec.class_paths)}
        for name, section in self.sections.items():
            changes[name] = getattr(spec, name) or section.class_name
            changes[f"{name}_args"] = {**section.init_args, **getattr(spec, f"{name}_args")}
            if section.class_path is not None:
                changes["class_paths"][name] = section.class_path
        return replace(spec, **changes)

    def check(self, loaded: LoadedScript) -> None:
        """Refuse a key the constructor does not take, before anything is built or written.

        Raises:
            BadInput: ``data`` without a DataModule in the script, or an unknown key.
        """
        for name, section in self.sections.items():
            cls = loaded.model_cls if name == "model" else loaded.data_cls
            if cls is None:
                raise BadInput(
                    f"config '{self.path}' has a data section, but the script defines no LightningDataModule; "
                    "remove the section or define the DataModule in the script."
                )
            valid, takes_any = init_arguments(cls)
            unknown = [k for k in section.init_args if k not in valid]
            if unknown and not takes_any:
                raise BadInput(
                    f"config '{self.path}': {name} has unknown key '{unknown[0]}' for {cls.__name__}; "
                    f"valid keys: {', '.join(valid) or 'none'}."
                )

    def warning(self) -> str | None:
        """The one warning about sections tunekit reads but does not use, or None."""
        if not self.not_used:
            return None
        return (
            f"config '{self.path}': tunekit sets the Trainer, optimizer, schedule and seed of every trial, so "
            f"it does not use {', '.join(self.not_used)}; give the budget with --max-steps or --max-epochs "
            "and the seed with --seed."
        )


def read_cli_config(path: str | Path, script: str | Path) -> CliConfig:
    """Read a LightningCLI config for ``script``.

    Raises:
        BadInput: missing file, invalid YAML, unknown top-level key, a malformed section, or a
            ``class_path`` outside the script.
    """
    data = read_yaml(
        path, "config file", "pass a LightningCLI config with model and data sections", syntax_hint="fix the syntax"
    )
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInput(f"config '{path}' must be a mapping with model and data sections, as LightningCLI writes it.")
    known = (*SECTIONS, *NOT_USED)
    unknown = [k for k in data if k not in known]
    if unknown:
        raise BadInput(f"config '{path}' has unknown key '{unknown[0]}'; valid top-level keys: {', '.join(known)}.")
    sections = {name: _section(path, name, data[name], Path(script)) for name in SECTIONS if data.get(name)}
    not_used = [_shown(k, data[k]) for k in NOT_USED if data.get(k) is not None]
    return CliConfig(str(path), sections, tuple(not_used))


def _section(path: str | Path, name: str, value: Any, script: Path) -> ConfigSection:
    if not isinstance(value, dict):
        raise BadInput(f"config '{path}': {name} must be a mapping of constructor arguments or class_path/init_args.")
    if "class_path" not in value:
        return ConfigSection(None, None, {str(k): v for k, v in value.items()})
    extra = [k for k in value if k not in ("class_path", "init_args")]
    if extra:
        raise BadInput(f"config '{path}': {name} has '{extra[0]}' next to class_path; put arguments under init_args.")
    class_path, init_args = value["class_path"], value.get("init_args") or {}
    if not isinstance(class_path, str) or not isinstance(init_args, dict):
        raise BadInput(f"config '{path}': {name}.class_path must be a class name and init_args a mapping.")
    module, _, class_name = class_path.rpartition(".")
    if module and module != "__main__" and module.rpartition(".")[2] != script.stem:
        raise BadInput(
            f"config '{path}': {name}.class_path '{class_path}' is not in the script {script.name}; tunekit builds "
            f"only classes defined in the script and imports no other path, so write class_path: {class_name} "
            "for a class of the script."
        )
    return ConfigSection(class_name, class_path, {str(k): v for k, v in init_args.items()})


def _shown(key: str, value: Any) -> str:
    if key == "trainer" and isinstance(value, dict) and value:
        return f"trainer ({', '.join(map(str, value))})"
    return key
