"""Selection grammar (SPEC 2): parsing, rendering and every error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import selection_renderings

from batchaction.errors import BatchError
from batchaction.selection import DEFAULT_MAX_TASKS, format_selection, parse_selection


class TestParseSelection:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("63", [63]),
            ("63, 64, 65", [63, 64, 65]),
            ("65-67", [65, 66, 67]),
            ("63, 65-67, 88", [63, 65, 66, 67, 88]),
            ("63 65-67 88", [63, 65, 66, 67, 88]),
            ("#63, #65-67", [63, 65, 66, 67]),
            ("63,", [63]),
            ("88, 63, 63, 64-65, 65", [63, 64, 65, 88]),
            ("  63\t,\n64  ", [63, 64]),
            ("7-7", [7]),
        ],
    )
    def test_valid_forms(self, text: str, expected: list[int]) -> None:
        """Every documented form parses to sorted, deduplicated numbers."""
        assert parse_selection(text) == expected

    @pytest.mark.parametrize(
        ("text", "named"),
        [
            ("", "empty"),
            ("  ,  ", "empty"),
            ("67-65", "'67-65'"),
            ("63-", "'63-'"),
            ("abc", "'abc'"),
            ("0", "'0'"),
            ("0-3", "'0-3'"),
            ("63, x7", "'x7'"),
            ("-5", "'-5'"),
            ("1.5", "'1.5'"),
            ("##5", "'##5'"),
        ],
    )
    def test_errors_name_the_item(self, text: str, named: str) -> None:
        """Invalid input raises BatchError (exit 2) naming the offending item."""
        with pytest.raises(BatchError) as info:
            parse_selection(text)
        assert info.value.exit_code == 2
        assert named in str(info.value)

    def test_range_over_cap(self) -> None:
        """A single range wider than the cap is refused and names the range and the cap."""
        with pytest.raises(BatchError, match=r"'1-501'.*500"):
            parse_selection("1-501")
        assert len(parse_selection("1-500")) == DEFAULT_MAX_TASKS

    def test_total_over_cap(self) -> None:
        """Several items adding up to more than the cap are refused."""
        with pytest.raises(BatchError, match="more than 3"):
            parse_selection("1, 2, 3, 9", max_tasks=3)
        assert parse_selection("1, 2, 3, 3", max_tasks=3) == [1, 2, 3]

    def test_huge_number_is_a_batch_error(self) -> None:
        """A number with thousands of digits is refused as BatchError, not ValueError."""
        with pytest.raises(BatchError):
            parse_selection("9" * 5000)

    def test_huge_range_fails_fast(self) -> None:
        """An absurd range is refused by arithmetic, not by building it."""
        with pytest.raises(BatchError, match="over the cap"):
            parse_selection("1-999999999999999999")


class TestFormatSelection:
    @pytest.mark.parametrize(
        ("numbers", "expected"),
        [
            ([63], "63"),
            ([63, 65, 66, 67], "63, 65-67"),
            ([67, 63, 66, 65, 63], "63, 65-67"),
            ([1, 2, 4, 5, 7], "1-2, 4-5, 7"),
            ([], ""),
        ],
    )
    def test_collapses_runs(self, numbers: list[int], expected: str) -> None:
        """Consecutive numbers render as ranges, in ascending order."""
        assert format_selection(numbers) == expected


class TestSelectionProperties:
    @given(st.lists(st.integers(1, 10_000), min_size=1, max_size=60))
    def test_format_then_parse_round_trips(self, numbers: list[int]) -> None:
        """Parsing a formatted selection gives back the sorted unique numbers."""
        assert parse_selection(format_selection(numbers), max_tasks=10_000) == sorted(set(numbers))

    @given(selection_renderings())
    def test_random_rendering_matches_model(self, case: tuple[str, set[int]]) -> None:
        """Any mix of commas, whitespace, ``#`` and ranges parses to the model's number set."""
        text, model = case
        assert parse_selection(text, max_tasks=10_000) == sorted(model)
