"""Comments cite papers and public repositories, never files outside this repository (issue #10, defect 9)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tunekit"


def sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in PACKAGE.rglob("*.py")}


def test_no_comment_cites_a_file_outside_the_repository() -> None:
    bad = [name for name, text in sources().items() if "literature.md" in text or "../shared" in text]
    assert not bad, f"cite the paper or repository instead of ../shared files in: {bad}"


def test_stale_citations_are_gone() -> None:
    """Muon's LR is absolute 0.02 (KellerJordan/Muon), not "match-RMS 1e-3"; IvanVassi/REX_LR is
    third-party, not the code of REX's authors (Chen, Wolfe, Kyrillidis 2022)."""
    text = "\n".join(sources().values())
    assert "match-RMS" not in text
    assert "authors' code\n    # (IvanVassi" not in text and "0.1 authors' code" not in text
    assert "Chen, Wolfe" in text
