"""Reading the YAML files a user hands tunekit (recipes, space files, law files): one loader.

Always ``yaml.safe_load``, so reading a file cannot run code, and one sentence for a missing or
unparsable file, naming the fix (issue #13: this was written three times).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunekit.errors import BadInput


def read_yaml(path: str | Path, what: str, missing_hint: str, *, syntax_hint: str, at_line: bool = True) -> Any:
    """The parsed contents of the YAML file ``path``.

    Args:
        what: the file's kind in messages ("recipe file").
        missing_hint: the fix when the file does not exist ("export one with ...").
        syntax_hint: the fix when it is not valid YAML ("fix the syntax").
        at_line: name the line of a syntax error.

    Raises:
        BadInput: the file does not exist or is not valid YAML.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{what} '{path}' does not exist; {missing_hint}.")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) if at_line else None
        at = f" at line {mark.line + 1}" if mark else ""
        raise BadInput(f"{what} '{path}' is not valid YAML{at}; {syntax_hint}.") from None
