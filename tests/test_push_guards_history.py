"""More of what a task can leave for the action's own git: a graft or replace ref that fakes the
branch's history, an alternate whose refs come from a command, and a shared TODO.md swapped
for a symlink that the next worktree, a merge of a task's edits or a mid-run push would read
or write through. Through the real entrypoint, a bare remote and the loopback API."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from actionhelpers import TODO_TEXT, ApiStub, Sandbox, comment_event, pull_answer, run_action
from test_truth import run_task

REWRITE = (
    "git reset -q --hard HEAD~1 && echo y > y.txt && git add y.txt && "
    "git -c user.name=t -c user.email=t@t commit -qm rewritten && "
)
GRAFT = 'git replace --graft HEAD "$(git rev-parse ORIG_HEAD)"'
GRAFT_FILE = 'echo "$(git rev-parse HEAD) $(git rev-parse ORIG_HEAD)" > "$(git rev-parse --git-common-dir)/info/grafts"'  # noqa: E501


@pytest.mark.parametrize(
    ("isolation", "rewrite"),
    [
        ("none", REWRITE + GRAFT),
        ("worktree", 'cd "$GITHUB_WORKSPACE" && ' + REWRITE + GRAFT),
        ("none", REWRITE + GRAFT_FILE),
    ],
    ids=["replace-ref", "replace-ref-worktree", "grafts-file"],
)
def test_a_faked_history_does_not_make_the_push_drop_commits(
    sandbox: Sandbox, api: ApiStub, isolation: str, rewrite: str
) -> None:
    sandbox.git("config", "receive.denyNonFastForwards", "false")
    run = run_task(sandbox, api, rewrite, isolation)
    assert sandbox.is_ancestor(sandbox.feature_sha, sandbox.tip("feature"))
    assert (run.code == 0) == (run.outputs["result"] == "success")


ALTERNATE = """set -e
git init -q --bare "$MARKERS/alt.git"
echo "$MARKERS/alt.git/objects" >> "$(git rev-parse --git-common-dir)/objects/info/alternates"
printf '#!/bin/sh\\necho ran > "%s/alt-ran"\\n' "$MARKERS" > "$MARKERS/alt.sh"
chmod +x "$MARKERS/alt.sh"
git config core.alternateRefsCommand "$MARKERS/alt.sh"
git clone -q --branch feature "$REMOTE" "$MARKERS/other"
cd "$MARKERS/other" && echo x > other.txt && git add other.txt
git -c user.name=o -c user.email=o@o commit -qm other && git push -q origin HEAD:feature
"""


def test_an_alternate_refs_command_never_runs_in_the_actions_fetch(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """The task sets core.alternateRefsCommand and an alternate, and someone pushes to the
    branch meanwhile: the action's fetch after the lost race runs no command of the task's."""
    script = sandbox.root / "alternate.sh"
    script.write_text(
        ALTERNATE.replace("$MARKERS", shlex.quote(str(sandbox.markers))).replace(
            "$REMOTE", shlex.quote(str(sandbox.remote))
        )
    )
    run = run_task(sandbox, api, f"sh {shlex.quote(str(script))}")
    assert "Traceback" not in run.err
    assert not (sandbox.markers / "alt-ran").exists()


SWAP = """n="$1"
if [ "$n" = 4 ]; then
  sleep "${DELAY:-0}"
  rm "$GITHUB_WORKSPACE/TODO.md"; ln -s SECRET "$GITHUB_WORKSPACE/TODO.md"
  sleep "${HOLD:-0}"
fi
if [ "$n" = 5 ]; then cp TODO.md MARKERS/seen-5; fi
exit 0
"""


def swap_run(sandbox: Sandbox, api: ApiStub, selection: str, env: str, **inputs: str) -> Path:
    secret = sandbox.root / "secret.txt"
    secret.write_text("TOP-SECRET root-only\n")
    secret.chmod(0o600)
    script = sandbox.root / "swap.sh"
    script.write_text(
        SWAP.replace("SECRET", shlex.quote(str(secret))).replace(
            "MARKERS", shlex.quote(str(sandbox.markers))
        )
    )
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    executor = f"{env} sh {shlex.quote(str(script))} {{number}}"
    run_action(
        sandbox, "issue_comment", comment_event(selection), api_url=api.url,
        inputs={"executor": executor, "isolation": "worktree", **inputs}, timeout=90,
    )  # fmt: skip
    return secret


def pushed_texts(sandbox: Sandbox) -> str:
    tip = sandbox.tip("feature")
    texts = []
    for sha in sandbox.git("rev-list", f"{sandbox.feature_sha}..{tip}").split():
        for path in sandbox.git("ls-tree", "-r", "--name-only", sha).split():
            texts.append(sandbox.git("show", f"{sha}:{path}"))
    return "\n".join(texts)


def test_the_next_worktree_never_gets_what_a_swapped_todo_leads_to(
    sandbox: Sandbox, api: ApiStub
) -> None:
    swap_run(sandbox, api, "/task 4,5", "", **{"max-parallel": "1"})
    seen = sandbox.markers / "seen-5"
    assert not (seen.exists() and "TOP-SECRET" in seen.read_text())
    assert "TOP-SECRET" not in pushed_texts(sandbox)


def test_a_mid_run_push_never_commits_what_a_swapped_todo_leads_to(
    sandbox: Sandbox, api: ApiStub
) -> None:
    swap_run(sandbox, api, "/task 4", "DELAY=0.5 HOLD=4", **{"push-every": "2s"})
    assert "TOP-SECRET" not in pushed_texts(sandbox)


MERGE = """set -e
python3 - <<'PY'
text = open("TODO.md").read()
open("TODO.md", "w").write(text.replace("### 5.", "INJECTED-BY-TASK\\n\\n### 5.", 1))
PY
rm "$GITHUB_WORKSPACE/TODO.md"
ln -s VICTIM "$GITHUB_WORKSPACE/TODO.md"
"""


def test_a_tasks_todo_edits_are_never_merged_through_a_symlink(
    sandbox: Sandbox, api: ApiStub
) -> None:
    victim = sandbox.root / "victim.md"
    victim.write_text(TODO_TEXT)
    script = sandbox.root / "merge.sh"
    script.write_text(MERGE.replace("VICTIM", shlex.quote(str(victim))))
    run_task(sandbox, api, f"sh {shlex.quote(str(script))}", "worktree")
    assert victim.read_text() == TODO_TEXT
