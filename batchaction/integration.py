"""Integration: each task's commits replayed onto a private ref, one task at a time.

A task runs in its own worktree, started at the integration tip. When it ends, its commits
(``start..head``) are first cleaned: the TODO file and its lock get the start's version back
in every commit (the TODO file is merged on its own, under its lock, never as text in a
commit), and a commit left empty by that is dropped. The cleaned commits are then replayed onto
the tip with ``git merge-tree --write-tree`` (a real three-way merge with no work tree and no
index, git >= 2.38) and ``git commit-tree``, keeping each commit's author, date and message:
linear history, as ``git rebase`` would make it. The merge base of every step is the task's
start, an ancestor of the tip; changes an earlier step already brought are identical on both
sides and merge cleanly. A history that contains merges is squashed into one commit, its
author kept. Git counts edits of adjacent lines as a conflict; parallel tasks that each edit
their own line of a shared file (a list, a registry) do exactly that, so a text file git
reports as conflicting is merged again line by line (``merge_lines``): changes to disjoint
line ranges, adjacent ones included, are both applied. A conflict that remains leaves the tip
where it was and names the files.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchaction.gitops import git

ZERO = "0" * 40


@dataclass(frozen=True)
class Integrated:
    """The result of integrating one task: new commits on the tip, or the conflicting files."""

    tip: str
    commits: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.conflicts


def _author_and_message(repo: Path, commit: str) -> tuple[dict[str, str], str]:
    """A commit's author (as ``GIT_AUTHOR_*``) and its message, in one git call."""
    out = git("log", "-1", "--format=%an%x00%ae%x00%aD%x00%B", commit, cwd=repo).stdout
    name, email, date, message = out.split("\x00", 3)
    author = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
    return author, message.removesuffix("\n")


class IntegrationRef:
    """A private ref (``refs/batchaction/<run-id>/tip``) that task work is replayed onto.

    ``strip`` are repository-relative paths that task commits never change (the TODO file and
    its lock). ``committer`` is the environment naming batchaction's committer identity.
    Every method runs git in ``repo`` and raises ``GitError`` (exit 1) when git fails for a
    reason other than a merge conflict.
    """

    def __init__(
        self,
        repo: Path,
        ref: str,
        start: str,
        *,
        strip: Sequence[str] = (),
        committer: Mapping[str, str] | None = None,
    ) -> None:
        self.repo = repo
        self.ref = ref
        self.strip = tuple(strip)
        self.committer = dict(committer or {})
        self.tip = git("rev-parse", "--verify", f"{start}^{{commit}}", cwd=repo).stdout.strip()
        git("update-ref", ref, self.tip, cwd=repo)

    # -- public -------------------------------------------------------------------------------

    def integrate(
        self, number: int, title: str, start: str, head: str, *, advance: bool = True
    ) -> Integrated:
        """Replay ``start..head`` onto the tip; on success the ref moves to the new tip, or,
        with ``advance=False``, stays where it is: the result's ``tip`` is then a candidate
        that ``advance`` moves the ref to (after a verification passed on it)."""
        commits = git(
            "rev-list", "--reverse", "--topo-order", f"{start}..{head}", cwd=self.repo
        ).stdout.split()
        if not commits:
            return Integrated(self.tip)
        merges = git("rev-list", "--merges", f"{start}..{head}", cwd=self.repo).stdout.split()
        if merges:
            cleaned = self._clean_chain(start, [head], squash=(number, title, commits))
        else:
            cleaned = self._clean_chain(start, commits)
        if start == self.tip and not merges:
            # Nothing was integrated since the task started: its cleaned commits go on as they
            # are (a fast-forward).
            made_now = tuple(c for _, c in cleaned)
            if made_now and advance:
                self.advance(made_now[-1])
            return Integrated(made_now[-1] if made_now else self.tip, made_now)
        tip = self.tip
        tip_tree = git("rev-parse", f"{tip}^{{tree}}", cwd=self.repo).stdout.strip()
        made: list[str] = []
        for original, commit in cleaned:
            merged = git(
                "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", tip, commit,
                cwd=self.repo, check=False,
            )  # fmt: skip
            if merged.returncode not in (0, 1):
                git("merge-tree", "--write-tree", tip, commit, cwd=self.repo)  # raises
            # -z: the tree, then each conflicted path, NUL-terminated (names stay unquoted).
            fields = merged.stdout.split("\0")
            tree = fields[0].strip()
            if merged.returncode == 1:
                files = tuple(dict.fromkeys(f for f in fields[1:] if f and "\n" not in f))
                resolved = self._resolve_lines(tree, files, start, tip, commit)
                if resolved is None:
                    return Integrated(self.tip, conflicts=files or ("(unknown files)",))
                tree = resolved
            if tree == tip_tree:
                continue  # nothing new: the tip already holds this change
            author, message = _author_and_message(self.repo, original)
            tip = git(
                "commit-tree", tree, "-p", tip, "-F", "-", cwd=self.repo,
                env={**author, **self.committer}, input_text=message,
            ).stdout.strip()  # fmt: skip
            tip_tree = tree
            made.append(tip)
        if made and advance:
            self.advance(tip)
        return Integrated(tip, tuple(made))

    def advance(self, candidate: str) -> None:
        """Move the ref from the tip to ``candidate`` (a descendant made by ``integrate``);
        raises GitError when the ref was moved by someone else meanwhile."""
        git("update-ref", self.ref, candidate, self.tip, cwd=self.repo)
        self.tip = candidate

    def commit_file(self, path: str, text: str, message: str, author: Mapping[str, str]) -> str:
        """Commit ``text`` as ``path`` (repository-relative) on the tip, by ``author``
        (``GIT_AUTHOR_*``); returns the new tip, or the tip itself when nothing changed."""
        blob = git("hash-object", "-w", "--stdin", cwd=self.repo, input_text=text)
        listed = git("ls-tree", self.tip, "--", path, cwd=self.repo).stdout
        mode = listed.split(" ", 1)[0] if listed else "100644"
        tip_tree = git("rev-parse", f"{self.tip}^{{tree}}", cwd=self.repo).stdout.strip()
        tree = self._with_entries(tip_tree, [f"{mode} {blob.stdout.strip()}\t{path}"])
        if tree == tip_tree:
            return self.tip
        commit = git(
            "commit-tree", tree, "-p", self.tip, "-F", "-", cwd=self.repo,
            env={**author, **self.committer}, input_text=message,
        ).stdout.strip()  # fmt: skip
        self.advance(commit)
        return commit

    def _blob(self, rev: str, path: str) -> str | None:
        """A file's text at ``rev``; None when absent, binary or not UTF-8."""
        try:
            shown = git("cat-file", "blob", f"{rev}:{path}", cwd=self.repo, check=False)
        except UnicodeDecodeError:
            return None
        if shown.returncode != 0 or "\0" in shown.stdout:
            return None
        return shown.stdout

    def _resolve_lines(
        self, tree: str, files: Sequence[str], base: str, ours: str, theirs: str
    ) -> str | None:
        """``tree`` with each conflicted text file merged line by line, or None if one can't."""
        entries: list[str] = []
        for path in files:
            versions = [self._blob(rev, path) for rev in (base, ours, theirs)]
            if any(v is None for v in versions):
                return None  # added, deleted or binary on one side: a real conflict
            text = merge_lines(*(v or "" for v in versions))
            if text is None:
                return None
            mode = git("ls-tree", ours, "--", path, cwd=self.repo).stdout.split(" ", 1)[0]
            sha = git("hash-object", "-w", "--stdin", cwd=self.repo, input_text=text)
            entries.append(f"{mode} {sha.stdout.strip()}\t{path}")
        return self._with_entries(tree, entries)

    def _with_entries(self, tree: str, entries: Sequence[str]) -> str:
        """``tree`` with index entries (``mode sha\tpath``, mode 0 to remove) applied."""
        index = Path(git("rev-parse", "--git-dir", cwd=self.repo).stdout.strip())
        if not index.is_absolute():
            index = self.repo / index
        index_file = index / f"batchaction-index-{id(self)}"
        env = {"GIT_INDEX_FILE": str(index_file)}
        try:
            git("read-tree", tree, cwd=self.repo, env=env)
            git(
                "update-index", "--index-info", cwd=self.repo, env=env,
                input_text="".join(e + "\n" for e in entries),
            )  # fmt: skip
            return git("write-tree", cwd=self.repo, env=env).stdout.strip()
        finally:
            index_file.unlink(missing_ok=True)

    def delete(self) -> None:
        git("update-ref", "-d", self.ref, cwd=self.repo, check=False)

    # -- cleaning -----------------------------------------------------------------------------

    def _strip_entries(self, rev: str) -> list[str]:
        """Index entries for the stripped paths as they are in ``rev`` (mode 0: absent)."""
        if not self.strip:
            return []
        listed = git("ls-tree", "-z", rev, "--", *self.strip, cwd=self.repo).stdout
        found: dict[str, str] = {}
        for record in filter(None, listed.split("\0")):
            mode_type_sha, _, path = record.partition("\t")
            mode, _, sha = mode_type_sha.split(" ")
            found[path] = f"{mode} {sha}\t{path}"
        return [found.get(path, f"0 {ZERO}\t{path}") for path in self.strip]

    def _clean_tree(self, commit: str, entries: Sequence[str]) -> str:
        """``commit``'s tree with the stripped paths set to ``entries`` (as in the start); the
        tree itself when they already are."""
        tree = git("rev-parse", f"{commit}^{{tree}}", cwd=self.repo).stdout.strip()
        if not entries or self._strip_entries(commit) == list(entries):
            return tree
        return self._with_entries(tree, entries)

    def _clean_chain(
        self,
        start: str,
        commits: Sequence[str],
        squash: tuple[int, str, Sequence[str]] | None = None,
    ) -> list[tuple[str, str]]:
        """(original, cleaned) commits, each cleaned one a child of the one before (the first
        of ``start``); commits left empty by the cleaning are dropped."""
        parent = start
        parent_tree = git("rev-parse", f"{start}^{{tree}}", cwd=self.repo).stdout.strip()
        entries = self._strip_entries(start)
        result: list[tuple[str, str]] = []
        for commit in commits:
            tree = self._clean_tree(commit, entries)
            if tree == parent_tree:
                continue
            author, message = _author_and_message(self.repo, commit)
            if squash is not None:
                number, title, originals = squash
                subjects = git(
                    "log", "--no-walk=unsorted", "--format=%s", *originals, cwd=self.repo
                ).stdout.splitlines()
                message = f"task {number}: {title}\n\nSquashed (the task's history had merges):\n"
                message += "".join(f"- {s}\n" for s in reversed(subjects))
            env = {**author, **self.committer}
            cleaned = git(
                "commit-tree", tree, "-p", parent, "-F", "-", cwd=self.repo, env=env,
                input_text=message,
            ).stdout.strip()  # fmt: skip
            result.append((cleaned if squash else commit, cleaned))
            parent, parent_tree = cleaned, tree
        return result


def _changes(base: Sequence[str], other: Sequence[str]) -> list[tuple[int, int, list[str]]]:
    """(start, end, replacement) for each base range ``other`` changed (difflib opcodes)."""
    matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
    return [
        (i1, i2, list(other[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def merge_lines(base: str, ours: str, theirs: str) -> str | None:
    """A three-way merge that accepts changes to adjacent lines; None on a real overlap.

    Both sides' changes are base line ranges with replacements. Two changes conflict when
    their ranges share a base line, or when both insert at the same place different lines, or
    one inserts strictly inside the other's range; identical changes count once.
    """
    base_lines = base.splitlines(keepends=True)
    changes = [(s, e, r, 0) for s, e, r in _changes(base_lines, ours.splitlines(keepends=True))]
    changes += [(s, e, r, 1) for s, e, r in _changes(base_lines, theirs.splitlines(keepends=True))]
    changes.sort(key=lambda c: (c[0], c[1], c[3]))
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, replacement, _side in changes:
        if merged:
            p_start, p_end, p_repl = merged[-1]
            if (start, end, replacement) == (p_start, p_end, p_repl):
                continue  # the same change on both sides
            overlaps = start < p_end or (start == p_start and (start == end or p_start == p_end))
            if overlaps:
                return None
        merged.append((start, end, replacement))
    out: list[str] = []
    at = 0
    for start, end, replacement in merged:
        out.extend(base_lines[at:start])
        out.extend(replacement)
        at = end
    out.extend(base_lines[at:])
    return "".join(out)
