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
reports as conflicting is merged again line by line (``linemerge.merge_lines``): changes to
disjoint line ranges, adjacent ones included, are both applied. A conflict that remains leaves
the tip where it was and names the files.

Cost: a task's commits are read from the object store (``history.ObjectStore``, no process
each). A plain history (linear from the start, the stripped paths at most modified in place)
is replayed from its own commits, one ``merge-tree`` and one ``commit-tree`` process each, and
the cleaning is folded in: the merged tree gets the tip's version of a stripped path back
(only the directories on the way to it are read and written again), which is what merging the
cleaned commit gives. Only when that merge does not go through cleanly is the cleaned commit
made and merged as such. Any other history takes the general path, one commit at a time.
Trees and stripped entries of the commits made here are remembered, not read again.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchaction.gitops import GitError, git
from batchaction.history import (
    Commit,
    ObjectStore,
    RefWriter,
    TreeEditor,
    author_and_message,
)
from batchaction.linemerge import merge_lines

__all__ = ["Integrated", "IntegrationRef", "merge_lines"]  # merge_lines: for todomerge

ZERO = "0" * 40
BLOB_MODES = ("100644", "100755")
KNOWN = 256  # commits whose tree and stripped entries are remembered (the latest made)
PLAIN_MAX = 64  # commits a plain history may have (a longer one takes the general path)
COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class Integrated:
    """The result of integrating one task: new commits on the tip, or the conflicting files."""

    tip: str
    commits: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.conflicts


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
        self._trees: dict[str, str] = {}  # commit -> its tree
        self._strips: dict[str, dict[str, str]] = {}  # commit -> {stripped path: "mode sha"}
        self._store = ObjectStore(repo)
        self._refs = RefWriter(repo)
        self._edit = TreeEditor(repo, self._store)
        git("update-ref", ref, self.tip, cwd=repo)

    # -- public -------------------------------------------------------------------------------

    def integrate(
        self, number: int, title: str, start: str, head: str, *, advance: bool = True
    ) -> Integrated:
        """Replay ``start..head`` onto the tip; on success the ref moves to the new tip, or,
        with ``advance=False``, stays where it is: the result's ``tip`` is then a candidate
        that ``advance`` moves the ref to (after a verification passed on it)."""
        try:
            plan = self._plan(start, head)
        except GitError:  # the object reader died (it starts again when next asked)
            plan = None
        if plan is None:  # not a plain history: clean it commit by commit
            return self._integrate_general(number, title, start, head, advance)
        if start != self.tip:
            return self._replay(start, plan, advance)
        # Nothing was integrated since the task started: its cleaned commits go on as they are
        # (a fast-forward). Commits that need no cleaning, on an unchanged chain, are kept
        # with their ids, as git rebase keeps them; the others are made again by
        # batchaction's committer as a replay would make them.
        base = self._strip_of(start)
        parent, made = start, []
        for commit, dirty in plan:
            if not dirty and commit.parents == (parent,):
                parent = commit.sha
            else:
                tree = self._edit.set_files(commit.tree, {p: base[p] for p in dirty})
                parent = self._commit(tree, parent, dict(commit.author), commit.message)
            made.append(parent)
        if made and advance:
            self.advance(made[-1])
        return Integrated(made[-1] if made else self.tip, tuple(made))

    def advance(self, candidate: str) -> None:
        """Move the tip to ``candidate`` (a descendant made by ``integrate``). The tip held
        here is the truth: the ref only shows it (and keeps its commits from git's garbage
        collection), so a task that moves the ref cannot stop the run or slip its own
        commit in; the ref is set, whatever it points at."""
        self._refs.update(self.ref, candidate)
        self.tip = candidate

    def commit_file(self, path: str, text: str, message: str, author: Mapping[str, str]) -> str:
        """Commit ``text`` as ``path`` (repository-relative) on the tip, by ``author``
        (``GIT_AUTHOR_*``); returns the new tip, or the tip itself when nothing changed."""
        blob = git("hash-object", "-w", "--stdin", cwd=self.repo, input_text=text).stdout.strip()
        listed = git("ls-tree", self.tip, "--", path, cwd=self.repo).stdout
        mode = listed.split(" ", 1)[0] if listed else "100644"
        tip_tree = self._tree(self.tip)
        tree = self._edit.with_entries(tip_tree, [f"{mode} {blob}\t{path}"])
        if tree == tip_tree:
            return self.tip
        strip = dict(self._strip_of(self.tip))
        commit = self._commit(tree, self.tip, author, message)
        if path in self.strip:
            strip[path] = f"{mode} {blob}"
        self._strips[commit] = strip
        self.advance(commit)
        return commit

    def delete(self) -> None:
        """Remove the ref, and stop the git processes kept for reading and writing."""
        for batch in (self._store, self._refs, self._edit):
            batch.close()
        git("update-ref", "-d", self.ref, cwd=self.repo, check=False)

    # -- the plain path -----------------------------------------------------------------------

    def _plan(self, start: str, head: str) -> list[tuple[Commit, tuple[str, ...]]] | None:
        """The commits of ``start..head`` to replay, oldest first, each with the stripped paths
        it holds otherwise than the start does; commits that change only stripped paths are
        left out. None unless the history is plain: linear from ``start``, every stripped path
        it touches modified in place (no rename, deletion or addition for a merge to pair)."""
        if not (COMMIT_ID.fullmatch(start) and COMMIT_ID.fullmatch(head)):
            return None
        chain: list[Commit] = []
        at = head
        while at != start:
            commit = self._store.commit(at) if len(chain) < PLAIN_MAX else None
            if commit is None or len(commit.parents) != 1:
                return None
            chain.append(commit)
            at = commit.parents[0]
        base = self._strip_of(start)
        parent_tree = self._tree(start)
        plan: list[tuple[Commit, tuple[str, ...]]] = []
        for commit in reversed(chain):
            view = self._store.files_at(commit.tree, self.strip)
            if view is None:
                return None
            for path in self.strip:
                old, new = base.get(path), view.get(path)
                if old != new and not (old and new and _blob(old) and _blob(new)):
                    return None
            other = self._store.differs(parent_tree, commit.tree, self.strip)
            if other is None:
                return None
            if other:
                plan.append((commit, tuple(p for p in self.strip if view.get(p) != base.get(p))))
            parent_tree = commit.tree
        return plan

    def _replay(
        self, start: str, plan: Sequence[tuple[Commit, tuple[str, ...]]], advance: bool
    ) -> Integrated:
        """Merge each commit (a descendant of ``start``) onto the tip in turn, its ``dirty``
        stripped paths set to the tip's version in the result."""
        tip = self.tip
        tip_tree = self._tree(tip)
        tip_strip = self._strip_of(tip) if any(dirty for _, dirty in plan) else {}
        made: list[str] = []
        for commit, changed in plan:
            theirs, dirty = commit.sha, changed
            merged = self._merge(tip, theirs)
            if dirty and (merged.returncode != 0 or any(p not in tip_strip for p in dirty)):
                # Merge the cleaned commit (the stripped paths as in the start) instead.
                base = self._strip_of(start)
                cleaned = self._edit.set_files(commit.tree, {p: base[p] for p in dirty})
                theirs = self._commit(cleaned, start, dict(commit.author), commit.message)
                merged, dirty = self._merge(tip, theirs), ()
            # -z: the tree, then each conflicted path, NUL-terminated (names stay unquoted).
            fields = merged.stdout.split("\0")
            tree = fields[0].strip()
            if merged.returncode == 1:
                files = tuple(dict.fromkeys(f for f in fields[1:] if f and "\n" not in f))
                resolved, unresolved = self._resolve_lines(tree, files, start, tip, theirs)
                if resolved is None:
                    return Integrated(self.tip, conflicts=unresolved)
                tree = resolved
            tree = self._edit.set_files(tree, {p: tip_strip[p] for p in dirty})
            if tree == tip_tree:
                continue  # nothing new: the tip already holds this change
            tip = self._commit(tree, tip, dict(commit.author), commit.message)
            tip_tree = tree
            made.append(tip)
        if made and advance:
            self.advance(tip)
        return Integrated(tip, tuple(made))

    def _merge(self, ours: str, theirs: str) -> subprocess.CompletedProcess[str]:
        """``git merge-tree --write-tree``: exit 0 merged, 1 conflicts; raises otherwise."""
        merged = git(
            "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs,
            cwd=self.repo, check=False,
        )  # fmt: skip
        if merged.returncode not in (0, 1):
            git("merge-tree", "--write-tree", ours, theirs, cwd=self.repo)  # raises
        return merged

    # -- commits and what is known of them ----------------------------------------------------

    def _commit(self, tree: str, parent: str, author: Mapping[str, str], message: str) -> str:
        """A new commit of ``tree`` on ``parent`` by ``author``, batchaction committing. Every
        commit made here holds its parent's stripped entries (``commit_file`` sets its own)."""
        made = git(
            "commit-tree", tree, "-p", parent, "-F", "-", cwd=self.repo,
            env={**author, **self.committer}, input_text=message,
        ).stdout.strip()  # fmt: skip
        self._trees[made] = tree
        if parent in self._strips:
            self._strips[made] = self._strips[parent]
        for known in (self._trees, self._strips):
            while len(known) > KNOWN:
                del known[next(iter(known))]
        return made

    def _tree(self, commit: str) -> str:
        if commit not in self._trees:
            found = self._store.commit(commit)
            self._trees[commit] = (
                found.tree
                if found is not None
                else git("rev-parse", f"{commit}^{{tree}}", cwd=self.repo).stdout.strip()
            )
        return self._trees[commit]

    def _strip_of(self, rev: str) -> dict[str, str]:
        """The stripped paths ``rev`` holds: {path: "mode sha"}."""
        if rev not in self._strips:
            view = self._store.files_at(self._tree(rev), self.strip) if self.strip else {}
            if view is None:
                view = {}
                listed = git("ls-tree", "-z", rev, "--", *self.strip, cwd=self.repo).stdout
                for record in filter(None, listed.split("\0")):
                    mode_type_sha, _, path = record.partition("\t")
                    mode, _, sha = mode_type_sha.split(" ")
                    view[path] = f"{mode} {sha}"
            self._strips[rev] = view
        return self._strips[rev]

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
    ) -> tuple[str | None, tuple[str, ...]]:
        """``tree`` with each conflicted text file merged line by line, and ``()``; or None
        and the files that really conflict (added, deleted or binary on one side, or the same
        lines changed), the ones the line merge settles left out of that list."""
        if not files:  # a conflict git could not name a file for
            return None, ("(unknown files)",)
        entries: list[str] = []
        unresolved: list[str] = []
        for path in files:
            versions = [self._blob(rev, path) for rev in (base, ours, theirs)]
            base_text, ours_text, theirs_text = versions
            text = (
                merge_lines(base_text, ours_text, theirs_text)
                if base_text is not None and ours_text is not None and theirs_text is not None
                else None
            )
            if text is None:
                unresolved.append(path)
                continue
            mode = git("ls-tree", ours, "--", path, cwd=self.repo).stdout.split(" ", 1)[0]
            sha = git("hash-object", "-w", "--stdin", cwd=self.repo, input_text=text)
            entries.append(f"{mode} {sha.stdout.strip()}\t{path}")
        if unresolved:
            return None, tuple(unresolved)
        return self._edit.with_entries(tree, entries), ()

    # -- the general path ---------------------------------------------------------------------

    def _integrate_general(
        self, number: int, title: str, start: str, head: str, advance: bool
    ) -> Integrated:
        """``integrate`` for any history: each commit cleaned (``_clean_chain``), then replayed."""
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
            made_now = tuple(c for c, _ in cleaned)
            if made_now and advance:
                self.advance(made_now[-1])
            return Integrated(made_now[-1] if made_now else self.tip, made_now)
        return self._replay(start, [(c, ()) for _, c in cleaned], advance)

    def _strip_entries(self, rev: str) -> list[str]:
        """Index entries for the stripped paths as they are in ``rev`` (mode 0: absent)."""
        found = self._strip_of(rev)
        return [f"{found[p]}\t{p}" if p in found else f"0 {ZERO}\t{p}" for p in self.strip]

    def _clean_chain(
        self,
        start: str,
        commits: Sequence[str],
        squash: tuple[int, str, Sequence[str]] | None = None,
    ) -> list[tuple[str, Commit]]:
        """(cleaned sha, cleaned commit) for each commit, each a child of the one before (the
        first of ``start``), the stripped paths as in ``start``; commits left empty by the
        cleaning are dropped."""
        parent = start
        parent_tree = self._tree(start)
        entries = self._strip_entries(start)
        result: list[tuple[str, Commit]] = []
        for commit in commits:
            tree = self._tree(commit)
            if entries and self._strip_entries(commit) != entries:
                tree = self._edit.with_entries(tree, entries)
            if tree == parent_tree:
                continue
            author, message = author_and_message(self.repo, commit)
            if squash is not None:
                number, title, originals = squash
                subjects = git(
                    "log", "--no-walk=unsorted", "--format=%s", *originals, cwd=self.repo
                ).stdout.splitlines()
                message = f"task {number}: {title}\n\nSquashed (the task's history had merges):\n"
                message += "".join(f"- {s}\n" for s in reversed(subjects))
            cleaned = self._commit(tree, parent, author, message)
            made = Commit(cleaned, tree, (parent,), tuple(author.items()), message)
            result.append((cleaned, made))
            parent, parent_tree = cleaned, tree
        return result


def _blob(entry: str) -> bool:
    """Whether an entry ("mode sha") is a regular file (not a link, tree or submodule)."""
    return entry.split(" ", 1)[0] in BLOB_MODES
