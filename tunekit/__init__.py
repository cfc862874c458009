"""tunekit: optimizer and learning-rate-schedule search for PyTorch Lightning models.

Importing this package is cheap; torch, lightning and optuna load only when a command needs them.
Python API: ``tunekit.training.use_recipe.UseRecipe`` (a callback, or ``UseRecipe.configure_optimizers(module, path)``).
"""

__version__ = "0.1.0"
