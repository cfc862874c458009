"""Keep Lightning's banners, tips and warnings out of the user's terminal; tunekit shows its own progress."""

from __future__ import annotations

import logging
import warnings


def silence_lightning() -> None:
    """Lower Lightning's and Optuna's loggers to errors and drop their warnings. Idempotent."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"lightning(\..*)?$")
    warnings.filterwarnings("ignore", module=r"lightning_fabric(\..*)?$")
    warnings.filterwarnings("ignore", message=r".*(does not have many workers|LightningModule|Trainer).*")
    import optuna

    # tunekit reports failed and pruned trials itself, with their reasons.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
