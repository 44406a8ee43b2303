"""Workflow commands and files (``batchaction.workflow``): outputs, summary, escaping, groups."""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

import pytest
from actionhelpers import parse_outputs
from hypothesis import given
from hypothesis import strategies as st

from batchaction.workflow import STEP_SUMMARY_LIMIT, Workflow, escape_data, escape_property


def unescape(text: str) -> str:
    """What the runner does to a command's data and properties (``%25`` last)."""
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def workflow(tmp_path: Path) -> tuple[Workflow, io.StringIO, Path, Path]:
    output = tmp_path / "github_output"
    summary = tmp_path / "step_summary.md"
    output.touch()
    summary.touch()
    out = io.StringIO()
    env = {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    return Workflow(env, out), out, output, summary


class TestOutputs:
    VALUES = {  # noqa: RUF012 - read only
        "plain": "success",
        "empty": "",
        "eof": "EOF",
        "eof-lines": "first\nEOF\nlast",
        "newlines": "a\n\nb\n",
        "heredoc-looking": "x<<EOF\nEOF",
        "equals": "k=v",
        "delimiter-prefix": "ghadelimiter_0123\nghadelimiter_",
        "json": '{"waves": [[1, 2], [3]], "note": "a\\nb"}',
        "unicode": "✅ done · 😕",
    }

    def test_heredocs_parse_back_to_the_values(self, tmp_path: Path) -> None:
        """Every value, including ones holding ``EOF`` and newlines, reads back unchanged."""
        wf, _, output, _ = workflow(tmp_path)
        wf.set_outputs(self.VALUES)
        assert parse_outputs(output.read_text(encoding="utf-8")) == self.VALUES

    def test_each_value_gets_a_fresh_delimiter(self, tmp_path: Path) -> None:
        """Delimiters are random, one per value, and never a line of the value."""
        wf, _, output, _ = workflow(tmp_path)
        wf.set_outputs(self.VALUES)
        text = output.read_text(encoding="utf-8")
        delimiters = re.findall(r"^[a-z-]+<<(ghadelimiter_.*)$", text, flags=re.MULTILINE)
        assert len(delimiters) == len(self.VALUES)
        assert len(set(delimiters)) == len(delimiters)
        for delimiter in delimiters:
            assert re.fullmatch(r"ghadelimiter_[0-9a-f]{32}", delimiter)
            assert all(delimiter not in value.split("\n") for value in self.VALUES.values())

    def test_outputs_append_to_what_is_there(self, tmp_path: Path) -> None:
        """Earlier outputs in the file (from other steps' commands) are kept."""
        wf, _, output, _ = workflow(tmp_path)
        output.write_text("earlier=1\n", encoding="utf-8")
        wf.set_outputs({"result": "failure"})
        wf.set_outputs({"commit-sha": "abc"})
        assert parse_outputs(output.read_text(encoding="utf-8")) == {
            "earlier": "1",
            "result": "failure",
            "commit-sha": "abc",
        }

    def test_no_output_file_is_fine(self) -> None:
        """Outside a runner (no GITHUB_OUTPUT) outputs are silently skipped."""
        Workflow({}, io.StringIO()).set_outputs({"result": "success"})

    @given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60))
    def test_any_text_round_trips(self, value: str) -> None:
        """Arbitrary text (no lone surrogates) survives the heredoc format."""
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "github_output"
            Workflow({"GITHUB_OUTPUT": str(path)}, io.StringIO()).set_outputs({"value": value})
            text = path.read_bytes().decode("utf-8")
        assert parse_outputs(text) == {"value": value}


class TestStepSummary:
    def test_small_summary_is_written_whole(self, tmp_path: Path) -> None:
        """A normal summary is appended as is, with a final newline."""
        wf, _, _, summary = workflow(tmp_path)
        summary.write_text("from an earlier step\n", encoding="utf-8")
        wf.step_summary("**batchaction** success\n\n| a | b |")
        assert summary.read_text(encoding="utf-8") == (
            "from an earlier step\n**batchaction** success\n\n| a | b |\n"
        )

    def test_huge_summary_is_capped_under_one_mib(self, tmp_path: Path) -> None:
        """Two MiB of Markdown is cut at a line end, under 1 MiB, with a note saying so."""
        wf, _, _, summary = workflow(tmp_path)
        row = "| 1 | **1** task ✅ | completed | 0.1s | fine |\n"
        markdown = row * (2 * STEP_SUMMARY_LIMIT // len(row.encode()))
        wf.step_summary(markdown)
        data = summary.read_bytes()
        assert len(data) < STEP_SUMMARY_LIMIT
        text = data.decode("utf-8")
        assert text.startswith(row * 100)
        assert "truncated" in text.rstrip().splitlines()[-1]
        body = text[: text.index("\n\n...(truncated")]
        assert set(body.split("\n")) == {row.rstrip("\n")}

    def test_cut_without_line_ends_stays_valid_utf8(self, tmp_path: Path) -> None:
        """A summary of one long line of multi-byte characters is cut on a character boundary."""
        wf, _, _, summary = workflow(tmp_path)
        wf.step_summary("a" + "✅" * STEP_SUMMARY_LIMIT)
        data = summary.read_bytes()
        assert len(data) < STEP_SUMMARY_LIMIT
        assert "truncated" in data.decode("utf-8")

    def test_no_summary_file_is_fine(self) -> None:
        """Outside a runner (no GITHUB_STEP_SUMMARY) the summary is skipped."""
        Workflow({}, io.StringIO()).step_summary("text")


class TestEscaping:
    @pytest.mark.parametrize(
        ("text", "data", "prop"),
        [
            ("100%", "100%25", "100%25"),
            ("a\nb", "a%0Ab", "a%0Ab"),
            ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
            ("%0A", "%250A", "%250A"),
            ("dir/a:b,c.md", "dir/a:b,c.md", "dir/a%3Ab%2Cc.md"),
            ("::error::x", "::error::x", "%3A%3Aerror%3A%3Ax"),
        ],
    )
    def test_escape_rules(self, text: str, data: str, prop: str) -> None:
        """``%`` first, then CR and LF; properties also escape ``:`` and ``,``."""
        assert escape_data(text) == data
        assert escape_property(text) == prop

    @given(st.text(max_size=80))
    def test_escapes_round_trip(self, text: str) -> None:
        """The runner's unescaping gives the text back, and no escaped form holds a line break."""
        for escaped in (escape_data(text), escape_property(text)):
            assert "\n" not in escaped
            assert "\r" not in escaped
            assert unescape(escaped) == text
        assert ":" not in escape_property(text)
        assert "," not in escape_property(text)

    def test_annotation_with_file_and_line(self) -> None:
        """``error()`` renders properties escaped and the message on one line."""
        out = io.StringIO()
        Workflow({}, out).error("task 3 failed:\nexit 1", file="specs/a,b:TODO.md", line=12)
        assert out.getvalue() == (
            "::error file=specs/a%2Cb%3ATODO.md,line=12::task 3 failed:%0Aexit 1\n"
        )

    def test_notice_and_mask(self) -> None:
        """Notices and masks are one line each."""
        out = io.StringIO()
        wf = Workflow({}, out)
        wf.notice("nothing to run\n::error::injected")
        wf.mask("s3cr%t")
        wf.mask("")
        assert out.getvalue().splitlines() == [
            "::notice::nothing to run%0A::error::injected",
            "::add-mask::s3cr%25t",
        ]


class TestGroup:
    LOG = (
        "task output\n",
        "::error::not from us\n",
        "::add-mask::nothing\n",
        "::endgroup::\n",
        "::stop-commands::other\n",
        "no newline at the end",
    )

    def test_lines_are_wrapped_in_stop_commands(self) -> None:
        """Untrusted lines sit between ``::stop-commands::<token>`` and ``::<token>::``."""
        out = io.StringIO()
        Workflow({}, out).group("Task 1: build\nfake (failed)", self.LOG)
        lines = out.getvalue().split("\n")
        assert lines[0] == "::group::Task 1: build%0Afake (failed)"
        match = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", lines[1])
        assert match is not None
        token = match[1]
        body = [line.rstrip("\n") for line in self.LOG]
        assert lines[2 : 2 + len(body)] == body
        assert lines[2 + len(body) :] == [f"::{token}::", "::endgroup::", ""]
        assert all(token not in line for line in body)

    def test_every_group_has_a_fresh_token(self) -> None:
        """Two groups never share a token, so a log cannot guess the next one."""
        out = io.StringIO()
        wf = Workflow({}, out)
        for _ in range(5):
            wf.group("t", ["x"])
        tokens = re.findall(r"^::stop-commands::(\S+)$", out.getvalue(), flags=re.MULTILINE)
        assert len(tokens) == 5
        assert len(set(tokens)) == 5
        for token in tokens:
            assert f"::{token}::" in out.getvalue()
