"""Load a user's model script by path and find what to train.

Contract (README, "Your model script"): the file defines exactly one
LightningModule subclass (or ``--model CLASS``), built with no arguments or ``--model-arg`` values;
optionally one LightningDataModule subclass (or ``--data CLASS``), built with ``batch_size=`` when
its constructor takes one. Every unusable script raises ``BadInput`` with one sentence.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.training.import_guard import RanAtImport, no_training_at_import


@dataclass(frozen=True)
class ScriptSpec:
    """What the user asked for: stored with the study so ``resume`` can rebuild it."""

    path: str
    model: str | None = None
    data: str | None = None
    model_args: dict = field(default_factory=dict)
    data_args: dict = field(default_factory=dict)
    # The class_path a LightningCLI config gave per section ("model"/"data"), as written, so that
    # export writes the config in the form the user's LightningCLI reads (issue #15).
    class_paths: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {
            "path": self.path,
            "model": self.model,
            "data": self.data,
            "model_args": dict(self.model_args),
            "data_args": dict(self.data_args),
        }
        if self.class_paths:
            out["class_paths"] = dict(self.class_paths)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> ScriptSpec:
        return cls(
            d["path"],
            d.get("model"),
            d.get("data"),
            dict(d.get("model_args") or {}),
            dict(d.get("data_args") or {}),
            dict(d.get("class_paths") or {}),
        )


@dataclass
class LoadedScript:
    """The classes found in a script, and how to build them.

    ``probe(batch_size)`` is the one (module, DataModule) pair the pre-study work shares (prior
    measurement, the ``--max-epochs`` conversion, the one-batch check), built once per process;
    every trial builds its own with ``build_model``/``build_data``.
    """

    spec: ScriptSpec
    model_cls: type
    data_cls: type | None
    _probes: dict = field(default_factory=dict, repr=False, compare=False)

    def probe(self, batch_size: int | None) -> tuple[Any, Any | None]:
        """The shared (module, DataModule or None) at ``batch_size``, built on first use.

        The module is built on PyTorch's ``meta`` device (issue #11): its parameters have shapes
        and no storage, so counting them and reading the architecture costs no memory even for a
        model too big for this machine. Train nothing with it; ``build_model`` makes a real one.
        """
        if batch_size not in self._probes:
            self._probes[batch_size] = (self.build_shapes_only(), self.build_data(batch_size))
        return self._probes[batch_size]

    def build_shapes_only(self) -> Any:
        """The module with every parameter and buffer on the ``meta`` device (no weights allocated).

        A constructor that cannot run on ``meta`` (it reads a checkpoint or computes with its
        weights) is built for real instead: measuring it then costs what building it costs.
        """
        import torch

        try:
            with torch.device("meta"):
                return self.build_model()
        except BadInput:  # the constructor failed on meta; a real build works or names the real error
            return self.build_model()

    @property
    def tunable_batch_size(self) -> bool:
        return self.data_cls is not None and "batch_size" in _init_params(self.data_cls)

    @property
    def default_batch_size(self) -> int | None:
        """The DataModule's own ``batch_size`` default (or ``--data-arg batch_size``), if any."""
        if not self.tunable_batch_size:
            return None
        if "batch_size" in self.spec.data_args:
            return self.spec.data_args["batch_size"]
        default = _init_params(self.data_cls)["batch_size"].default
        return default if isinstance(default, int) and not isinstance(default, bool) else None

    def steps_per_epoch(self, batch_size: int | None, accumulate_grad_batches: int = 1) -> int:
        """Optimizer steps in one pass over the training data at ``batch_size``.

        Raises:
            BadInput: the training dataloader has no length (an iterable dataset).
        """
        model, data = self.probe(batch_size)
        if data is not None:
            data.setup("fit")
            loader = data.train_dataloader()
        else:
            loader = model.train_dataloader()
        try:
            batches = len(loader)
        except TypeError:
            raise BadInput(
                "--max-epochs needs a training dataloader with a length; give --max-steps instead."
            ) from None
        return max(1, -(-batches // accumulate_grad_batches))

    def manual_optimization(self, batch_size: int | None) -> bool:
        """Whether the module optimizes manually (``automatic_optimization = False``), with one optimizer.

        A trial builds one optimizer from its recipe, and ``self.optimizers()`` returns it (issue #15).

        Raises:
            BadInput: the module optimizes manually with several optimizers.
        """
        model, _ = self.probe(batch_size)
        if model.automatic_optimization:
            return False
        count = _optimizer_count(model)
        if count is not None and count > 1:
            raise BadInput(
                f"{self.model_cls.__name__} optimizes manually with {count} optimizers, but a tunekit trial "
                "builds one optimizer from its recipe; use one optimizer over all parameters (self.optimizers() "
                "then returns it), or tune each part in a script of its own."
            )
        return True

    def build_model(self) -> Any:
        return _construct(self.model_cls, self.spec.model_args, "--model-arg")

    def build_data(self, batch_size: int | None = None) -> Any | None:
        if self.data_cls is None:
            return None
        args = dict(self.spec.data_args)
        if batch_size is not None and self.tunable_batch_size:
            args["batch_size"] = batch_size
        return _construct(self.data_cls, args, "--data-arg")


def parse_assignments(pairs: tuple[str, ...] | list[str], option: str) -> dict:
    """``k=v`` strings to a dict; values are YAML scalars (``3`` is an int, ``1e-3`` a float).

    Splits on the first ``=`` only, so values may contain ``=``.
    """
    import yaml

    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{option} '{pair}' is not of the form key=value; write e.g. {option} d_model=128.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _looks_like_float(value):
            value = float(value)  # YAML 1.1 reads 1e-3 as a string
        out[key.strip()] = value
    return out


def load_script(spec: ScriptSpec) -> LoadedScript:
    """Import the script and pick its LightningModule and LightningDataModule.

    Raises:
        BadInput: missing file, syntax or import error, no or several candidate classes, or an
            unknown ``--model``/``--data`` name.
    """
    path = Path(spec.path)
    if not path.is_file():
        raise BadInput(
            f"model script '{spec.path}' does not exist; pass the path of a Python file that defines a LightningModule."
        )
    module = _import_file(path)

    import lightning.pytorch as pl

    model_cls = _pick(module, path, pl.LightningModule, spec.model, "LightningModule", "--model", required=True)
    data_cls = _pick(module, path, pl.LightningDataModule, spec.data, "LightningDataModule", "--data", required=False)
    return LoadedScript(spec, model_cls, data_cls)


def _import_file(path: Path) -> Any:
    resolved = path.resolve()
    # A stable, unique module name so classes defined in the script pickle and compare consistently.
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    name = f"tunekit_script_{resolved.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # sibling imports, as when the user runs the script directly
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise BadInput(f"model script '{path}' cannot be imported; pass a .py file.")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        with no_training_at_import(resolved.read_text(errors="replace")):
            module_spec.loader.exec_module(module)
    except RanAtImport as exc:
        del sys.modules[name]
        raise BadInput(
            f"model script '{path}' calls {exc.what} when it is imported{_last_user_frame(exc, resolved)}, so it "
            'would train before tunekit starts; put that code under if __name__ == "__main__": and run again.'
        ) from None
    except SyntaxError as exc:
        del sys.modules[name]
        raise BadInput(
            f"model script '{path}' has a syntax error at line {exc.lineno}: {exc.msg}; fix it and run again."
        ) from None
    except BaseException as exc:  # noqa: BLE001 - anything the user's module-level code raises
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        where = _last_user_frame(exc, resolved)
        hint = "install the missing package or fix the import" if isinstance(exc, ImportError) else "fix the script"
        raise BadInput(f"model script '{path}' failed to import{where}: {type(exc).__name__}: {exc}; {hint}.") from None
    return module


def _pick(
    module: Any, path: Path, base: type, wanted: str | None, kind: str, option: str, required: bool
) -> type | None:
    candidates = {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and obj.__module__ == module.__name__
    }
    if wanted is not None:
        obj = getattr(module, wanted, None)
        if inspect.isclass(obj) and issubclass(obj, base):
            return obj
        found = ", ".join(candidates) or "none"
        raise BadInput(f"model script '{path}' has no {kind} class '{wanted}' (found: {found}); fix {option}.")
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    if not candidates:
        if required:
            raise BadInput(
                f"model script '{path}' defines no {kind} subclass; define one in it or pass {option} CLASS."
            )
        return None
    names = ", ".join(candidates)
    raise BadInput(
        f"model script '{path}' defines {len(candidates)} {kind} subclasses ({names}); choose one with {option} NAME."
    )


def _construct(cls: type, args: dict, option: str) -> Any:
    params = _init_params(cls)
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in args if k not in params and not takes_kwargs]
    if unknown:
        valid = ", ".join(k for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)) or "none"
        raise BadInput(f"{cls.__name__} takes no argument {', '.join(unknown)}; valid {option} names: {valid}.")
    missing = [
        k
        for k, p in params.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k not in args
    ]
    if missing:
        raise BadInput(f"{cls.__name__} needs {', '.join(missing)}; pass {option} {missing[0]}=VALUE.")
    try:
        return cls(**args)
    except Exception as exc:  # noqa: BLE001 - the user's constructor: the same for every trial, so bad input
        raise BadInput(
            f"building {cls.__name__} failed: {type(exc).__name__}: {exc}; fix the script or its {option} values."
        ) from None


def init_arguments(cls: type) -> tuple[list[str], bool]:
    """The names ``cls(...)`` takes by keyword, and whether it takes any (``**kwargs``)."""
    params = _init_params(cls)
    named = [k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, any(p.kind is p.VAR_KEYWORD for p in params.values())


def _init_params(cls: type) -> dict:
    try:
        params = dict(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        return {}
    params.pop("self", None)
    return params


def _optimizer_count(model: Any) -> int | None:
    """How many optimizers the module's own ``configure_optimizers`` returns; None when unknown.

    Parsed by Lightning's own reader of that return value. A ``configure_optimizers`` that needs a
    Trainer (``self.trainer.estimated_stepping_batches``) cannot be called here: None, and the
    one-batch check runs the module instead.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.core.optimizer import _configure_optimizers

    if type(model).configure_optimizers is pl.LightningModule.configure_optimizers:
        return None
    try:
        return len(_configure_optimizers(model.configure_optimizers())[0])
    except Exception:  # noqa: BLE001 - the user's code, outside a Trainer
        return None


def _script_frames(exc: BaseException, script: Path) -> list:
    return [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == script]


def raised_in(exc: BaseException, script: str | Path) -> bool:
    """Whether the script's code is on ``exc``'s traceback: it raised, or called what raised."""
    return bool(_script_frames(exc, Path(script).resolve()))


def _last_user_frame(exc: BaseException, script: Path) -> str:
    frames = _script_frames(exc, script)
    return f" (line {frames[-1].lineno})" if frames else ""


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return any(c in text.lower() for c in ".e") and text.strip().lower() not in ("nan", "inf", "-inf")
