"""Dependency and Effort extraction from real-world field text (SPEC 3)."""

from __future__ import annotations

import pytest

from batchaction.deps import parse_dependencies, parse_effort


class TestParseDependencies:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("None", ()),
            ("none (this task stands alone)", ()),
            ("None.", ()),
            ("", ()),
            ("136, 137", (136, 137)),
            ("Task 72", (72,)),
            ("Tasks 72-76", (72, 73, 74, 75, 76)),
            ("Tasks 72, 73, 74, 75", (72, 73, 74, 75)),
            ("Task #1007", (1007,)),
            ("#12, #13", (12, 13)),
            ("212 (completed)", (212,)),
            ("Task 290 (researched)", (290,)),
            ("Tasks 126, 127 (completed)", (126, 127)),
            ("Task 671, Task 672", (671, 672)),
            ("Task 245 (Phase 2 Phases 1-5 complete)", (245,)),
            ("Requires Task 9 (completeness proofs for correctness)", (9,)),
            ("Tasks 72 and 73", (72, 73)),
            ("Task 72, Task 72", (72,)),
        ],
    )
    def test_extracts_numbers(self, value: str, expected: tuple[int, ...]) -> None:
        """Task numbers come out in order, without duplicates and without warning."""
        deps = parse_dependencies(value)
        assert deps.numbers == expected
        assert deps.warning is None

    @pytest.mark.parametrize(
        "value",
        [
            "Requires Layer 0 completion",
            "Benefits from completed soundness proofs",
            "Soundness (Complete), Deduction Theorem (Complete)",
            "Phase 2",
        ],
    )
    def test_free_text_is_no_dependency_with_warning(self, value: str) -> None:
        """Text without a task reference yields no dependency and a warning quoting it."""
        deps = parse_dependencies(value)
        assert deps.numbers == ()
        assert deps.warning is not None
        assert value in deps.warning

    def test_parenthesised_numbers_are_annotation(self) -> None:
        """Numbers inside parentheses (even nested) never count."""
        assert parse_dependencies("Task 3 (see Task 4 (and #5))").numbers == (3,)

    def test_number_needs_task_or_hash_inside_prose(self) -> None:
        """In prose, a number counts only after Task/Tasks/#."""
        assert parse_dependencies("Layer 0 and Task 5").numbers == (5,)

    def test_huge_number_does_not_raise(self) -> None:
        """A dependency number with thousands of digits never raises."""
        parse_dependencies("Task " + "9" * 5000)

    def test_backwards_range_is_ignored_with_warning(self) -> None:
        """A range that runs backwards adds nothing and says why."""
        deps = parse_dependencies("Tasks 76-72")
        assert deps.numbers == ()
        assert deps.warning is not None
        assert "76-72" in deps.warning


class TestParseEffort:
    @pytest.mark.parametrize(
        ("value", "hours"),
        [
            ("2-3 hours", 2.5),
            ("30 minutes", 0.5),
            ("Small (0.5 hours)", 0.5),
            ("4 hours", 4.0),
            ("1.5 hours", 1.5),
            ("2h", 2.0),
            ("1 day", 8.0),
            ("TBD", None),
            ("", None),
        ],
    )
    def test_hours(self, value: str, hours: float | None) -> None:
        """Effort text converts to hours; text without a number is None."""
        assert parse_effort(value) == (pytest.approx(hours) if hours is not None else None)
