from __future__ import annotations

from pathlib import Path

import pytest

from peaktrade.errors import InvalidId
from peaktrade.ids import new_run_id, new_session_id, safe_join, validate_id
from tests.conftest import T0


def test_run_id_format_and_uniqueness_within_one_second() -> None:
    ids = {new_run_id("paper", "ma crossover", "BTC/EUR", "1m", T0) for _ in range(500)}
    assert len(ids) == 500
    one = next(iter(ids))
    assert one.startswith("20250101_000000_paper_ma_crossover_BTC-EUR_1m_")
    validate_id(one)


def test_session_id_format() -> None:
    sid = new_session_id("shadow", T0)
    assert sid.startswith("session_20250101_000000_shadow_") and len(sid.rsplit("_", 1)[1]) == 6


@pytest.mark.parametrize(
    "bad", ["..", ".", "../etc", "a/b", "a\\b", "", "x" * 161, "run id", "<script>", "ü", "a\x00b", "/abs"]
)
def test_invalid_ids_rejected(bad: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidId):
        safe_join(tmp_path, bad)


def test_safe_join_stays_inside(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "run.1_a-b") == tmp_path / "run.1_a-b"


def test_symlink_escape_rejected(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidId, match="outside"):
        safe_join(tmp_path / "base", "link")
