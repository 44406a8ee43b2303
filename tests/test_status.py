"""Status classification and marker style (SPEC 3, SPEC 6)."""

from __future__ import annotations

import pytest

from batchaction.status import DEFAULT_TABLE, StatusTable, classify, detect_style


class TestClassify:
    @pytest.mark.parametrize(
        "value",
        [
            "COMPLETE",
            "COMPLETED",
            "DONE",
            "[COMPLETE] ✅",
            "[COMPLETED]",
            "[completed]",
            "Completed",
            "done",
            "[Done] (2026-01-04)",
            "COMPLETED (2026-01-04)",
            "Done ✅",
            "  [Complete]  ",
            "[ COMPLETED ]",
            "✅",
            "✅ shipped in 0.3",
        ],
    )
    def test_done(self, value: str) -> None:
        """Done words in any case, with or without brackets and trailing notes, mean done."""
        assert classify(value) == "done"

    @pytest.mark.parametrize(
        "value",
        [
            "[ABANDONED]",
            "abandoned",
            "[SUPERSEDED] by task 80",
            "Superseded",
            "[EXPANDED]",
            "Expanded (into 90-93)",
            "[CANCELLED]",
            "Cancelled",
            "CANCELED",
            "[canceled] ❌",
        ],
    )
    def test_closed(self, value: str) -> None:
        """Closed words mean closed, whatever the case or trailing text."""
        assert classify(value) == "closed"

    @pytest.mark.parametrize(
        "value",
        [
            "NOT STARTED",
            "[NOT STARTED]",
            "Not Started",
            "[IN PROGRESS]",
            "In Progress (started 2026-01-04)",
            "[BLOCKED]",
            "FAILED",
            "[PLANNED]",
            "RESEARCHED",
            "[PARTIAL]",
            "[IMPLEMENTING]",
            "[REVISING]",
            "Not done",
            "Incomplete",
            "Partially complete",
            "Completely broken",
            "",
        ],
    )
    def test_open(self, value: str) -> None:
        """Anything that is not a done or closed marker is open, prefixes and lookalikes too."""
        assert classify(value) == "open"

    def test_default_table_is_used(self) -> None:
        """Classifying with the default table explicitly gives the same result."""
        assert classify("[DONE]", DEFAULT_TABLE) == "done"


class TestStatusTable:
    def test_extra_done_markers(self) -> None:
        """Configured done markers count as done, in addition to the built-in ones."""
        table = StatusTable.create(extra_done=["SHIPPED", "Merged"])
        assert classify("[SHIPPED]", table) == "done"
        assert classify("merged (v1.2)", table) == "done"
        assert classify("[COMPLETED]", table) == "done"
        assert classify("[SHIPPED]") == "open"

    def test_extra_closed_markers(self) -> None:
        """Configured closed markers count as closed."""
        table = StatusTable.create(extra_closed=["WONTFIX", "Out of scope"])
        assert classify("[WONTFIX]", table) == "closed"
        assert classify("Out of scope", table) == "closed"
        assert classify("Out", table) == "open"

    def test_multiword_marker_needs_all_words(self) -> None:
        """A multi-word extra marker does not match a status holding only its first word."""
        table = StatusTable.create(extra_done=["READY TO SHIP"])
        assert classify("[READY TO SHIP]", table) == "done"
        assert classify("[READY]", table) == "open"

    def test_bracketed_marker_with_apostrophe(self) -> None:
        """An extra marker with an apostrophe matches when bracketed."""
        table = StatusTable.create(extra_closed=["WON'T FIX"])
        assert classify("[WON'T FIX]", table) == "closed"

    def test_unbracketed_marker_with_apostrophe(self) -> None:
        """An extra marker with an apostrophe also matches when written without brackets."""
        table = StatusTable.create(extra_closed=["WON'T FIX"])
        assert classify("Won't fix", table) == "closed"


class TestDetectStyle:
    def test_follows_complete_spelling(self) -> None:
        """A file writing ``[COMPLETE]`` gets ``[COMPLETE]`` back."""
        style = detect_style(["[COMPLETE] ✅", "Not Started", "[COMPLETE]"])
        assert style.render("completed") == "[COMPLETE]"
        assert style.render("in-progress") == "[IN PROGRESS]"

    def test_majority_done_word_wins(self) -> None:
        """The done word the file uses most is the one written."""
        style = detect_style(["[COMPLETED]", "[COMPLETE]", "[COMPLETED]"])
        assert style.render("completed") == "[COMPLETED]"

    def test_plain_words_file(self) -> None:
        """A file without bracketed statuses gets plain title-case words."""
        style = detect_style(["Not Started", "Complete"])
        assert style.render("completed") == "Complete"
        assert style.render("in-progress") == "In Progress"
        assert style.render("failed") == "Failed"

    def test_empty_file_defaults(self) -> None:
        """Without any status to follow, markers are bracketed and COMPLETED."""
        style = detect_style([])
        assert style.render("completed") == "[COMPLETED]"
        assert style.render("blocked") == "[BLOCKED]"

    def test_overrides_win_verbatim(self) -> None:
        """Configured markers are written exactly as given."""
        style = detect_style(["[COMPLETE]"], {"completed": "Done ✅"})
        assert style.render("completed") == "Done ✅"
        assert style.render("failed") == "[FAILED]"

    def test_fixture_with_complete(self, fixtures_dir, read_text) -> None:
        """The real file that writes ``[COMPLETE] ✅`` renders COMPLETE."""
        from batchaction.todo import parse_todo

        doc = parse_todo(read_text(fixtures_dir / "todo" / "proofchecker-e430f09.md"))
        style = detect_style(task.status for task in doc.tasks)
        assert style.render("completed") == "[COMPLETE]"
