"""The repository's copies of the real-world fixtures stay identical to the shared originals."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_copies_match_the_shared_fixtures() -> None:
    """Every shared fixture is copied byte for byte, and nothing else is there."""
    if not SHARED.is_dir():
        pytest.skip("the shared fixtures are not beside this checkout")
    assert _files(HERE) == _files(SHARED)
    for name in _files(SHARED):
        assert (HERE / name).read_bytes() == (SHARED / name).read_bytes(), name
