"""tunekit: optimizer and learning-rate-schedule search for PyTorch Lightning models.

Importing this package is cheap; torch, lightning and optuna load only when a command needs them.
Python API: ``tunekit.recipes.load_recipe(path).configure_optimizers(module)``.
"""

__version__ = "0.1.0"
