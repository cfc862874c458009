"""The trial runner: load a model script and train it with a recipe under Lightning."""
