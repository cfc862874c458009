"""The study layer: Optuna studies, their settings, trial records, storage and worker coordination."""
