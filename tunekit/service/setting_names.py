"""How the settings a continued study must keep (``study.settings.COMPARABLE``) are spelled on the command line.

``search`` names the settings the user typed (``settings_given``), and only those must agree with
an existing study of the same name; the "created with" message spells them back (``spell_setting``).
"""

from __future__ import annotations

# How each comparable setting is spelled on the command line, for the "created with" message.
OPTION_OF_SETTING = {
    "script": "script",
    "model": "--model",
    "data": "--data",
    "model_args": "--model-arg",
    "data_args": "--data-arg",
    "metric": "--metric",
    "direction": "--direction",
    "max_steps": "--max-steps",
    "optimizers": "--optimizers",
    "schedules": "--schedules",
    "overrides": "--space",
    "seed": "--seed",
    "evaluations": "--evaluations",
    "prior": "--prior",
    "precision": "--precision",
    "also": "--also",
    "fidelity": "--fidelity",
    "min_steps": "--min-steps",
    "eta": "--eta",
    "budget_bound": "--budget-bound",
}


def spell_setting(name: str) -> str:
    return OPTION_OF_SETTING.get(name, name)


def settings_given(options: set[str]) -> frozenset[str]:
    """The settings named by the command-line options the user typed (``--max-steps`` -> ``max_steps``)."""
    setting_of = {option: name for name, option in OPTION_OF_SETTING.items()}
    return frozenset(setting_of[o] for o in options if o in setting_of)
