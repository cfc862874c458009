"""Comments cite papers and public repositories, never files outside this repository (issue #10, defect 9)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tunekit"
# Written here in two parts so that this file does not match itself.
OUTSIDE = ("literature" + ".md", "../" + "shared", "shared" + "/literature")


def sources(root: Path = PACKAGE) -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text() for p in root.rglob("*.py")}


def test_no_comment_cites_a_file_outside_the_repository() -> None:
    everything = {
        **sources(PACKAGE),
        **sources(REPO / "tests"),
        **sources(REPO / "benchmarks"),
        **sources(REPO / "examples"),
    }
    bad = [name for name, text in everything.items() if any(o in text for o in OUTSIDE)]
    assert not bad, f"cite the paper or repository instead of files outside the repository in: {bad}"


def test_stale_citations_are_gone() -> None:
    """Muon's LR is absolute 0.02 (KellerJordan/Muon), not "match-RMS 1e-3"; IvanVassi/REX_LR is
    third-party, not the code of REX's authors (Chen, Wolfe, Kyrillidis 2022)."""
    text = "\n".join(sources().values())
    assert "match-RMS" not in text
    assert "authors' code\n    # (IvanVassi" not in text and "0.1 authors' code" not in text
    assert "Chen, Wolfe" in text
