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


class TestValueForms:
    """Each value form seen in real dependency fields, from a small sample of its shape."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("[918]", (918,)),
            ("[58, 66, 67]", (58, 66, 67)),
            ("[Task 58](#58-fix-the-parser), Task 59", (58, 59)),
            ("Tasks 5 through 8", (5, 6, 7, 8)),
            ("Tasks 5 to 8", (5, 6, 7, 8)),
            ("Task 5 to Task 7", (5, 6, 7)),
            ("5–8", (5, 6, 7, 8)),
            ("5—8", (5, 6, 7, 8)),
            ("Tasks 5 – 7", (5, 6, 7)),
            ("Tasks 870/880", (870, 880)),
            ("Task 9 or Task 10", (9, 10)),
            ("Task 5 <!-- was 4 -->", (5,)),
            ("N/A", ()),
            ("none (standalone)", ()),
        ],
    )
    def test_read_without_warning(self, value: str, expected: tuple[int, ...]) -> None:
        deps = parse_dependencies(value)
        assert deps.numbers == expected
        assert deps.warnings == ()

    @pytest.mark.parametrize(
        ("value", "expected", "fragment"),
        [
            ("5.2", (5,), "'5.2'"),
            ("Task 5.2", (5,), "'5.2'"),
            ("Tasks 4, 5.2", (4, 5), "'5.2'"),
        ],
    )
    def test_sub_task_is_its_task_with_a_warning(
        self, value: str, expected: tuple[int, ...], fragment: str
    ) -> None:
        """``5.2`` and ``Task 5.2`` both read as task 5, and the warning names the fragment."""
        deps = parse_dependencies(value)
        assert deps.numbers == expected
        assert len(deps.warnings) == 1
        assert fragment in deps.warnings[0]
        assert "task 5" in deps.warnings[0]

    @pytest.mark.parametrize(
        ("value", "expected", "fragment"),
        [
            ("owner/repo#12", (), "owner/repo#12"),
            ("issue #115, Task 4", (4,), "issue #115"),
            ("lean-lsp-mcp issue #115 resolution", (), "issue #115"),
            ("PR #42", (), "PR #42"),
            ("Task 3, pull request #42", (3,), "pull request #42"),
            ("GitHub anthropics/claude-code #16803", (), "GitHub anthropics/claude-code #16803"),
            ("https://github.com/o/r/issues/12", (), "https://github.com/o/r/issues/12"),
            ("#7 (see https://example.org/t/3)", (7,), None),
            ("GH-12", (), "GH-12"),
        ],
    )
    def test_other_trackers_are_never_tasks(
        self, value: str, expected: tuple[int, ...], fragment: str | None
    ) -> None:
        """Another tracker's number is not read, and (outside an annotation) says so."""
        deps = parse_dependencies(value)
        assert deps.numbers == expected
        if fragment is None:
            assert deps.warnings == ()
        else:
            assert any(fragment in w and "another tracker" in w for w in deps.warnings)

    @pytest.mark.parametrize(
        ("value", "expected", "fragment"),
        [
            ("Phase 3", (), "'Phase 3'"),
            ("Task 72, Phase 3", (72,), "'Phase 3'"),
            ("Layer 0 and Task 5", (5,), "'Layer 0'"),
            ("Task 4 completed 2025-01-03", (4,), "2025-01-03"),
            ("~~Task 5~~, Task 6", (6,), "~~Task 5~~"),
            ("lean 4.3", (), "'lean 4.3'"),
            ("(3)", (), "'(3)' is all in parentheses"),
        ],
    )
    def test_a_number_not_read_never_passes_silently(
        self, value: str, expected: tuple[int, ...], fragment: str
    ) -> None:
        """The warning quotes the fragment and, for free text, says how to write a reference."""
        deps = parse_dependencies(value)
        assert deps.numbers == expected
        assert any(fragment in w for w in deps.warnings), deps.warnings

    def test_free_text_warning_says_how_to_write_a_reference(self) -> None:
        (warning,) = parse_dependencies("Phase 3").warnings
        assert "'Task 72'" in warning

    @pytest.mark.parametrize(
        "value",
        ["a" * 100_000, "a/" * 50_000, "1-" * 50_000, "1 to " * 20_000, "http" * 25_000],
    )
    def test_long_values_stay_linear(self, value: str) -> None:
        """Hostile values finish (each took well under a second; quadratic ones took minutes)."""
        parse_dependencies(value)
