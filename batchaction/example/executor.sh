#!/bin/sh
# The demo's executor: what a coding agent would do for each task. batchaction runs it once per
# task, in the task's own git worktree, with BATCH_TASK_NUMBER and friends in the environment.
# Most tasks write files and commit them under their own name; 4 and 9 leave their work
# uncommitted (batchaction commits it for them); 5 and 6 both rewrite the Usage line of
# README.md, so the one that finishes second conflicts; 7 fails, 8 times out, 9 reports work in
# progress.
set -eu
n="$BATCH_TASK_NUMBER"
echo "task $n: $BATCH_TASK_TITLE"
echo "wave $BATCH_TASK_WAVE, after: ${BATCH_TASK_DEPENDENCIES:-nothing}"

commit() {  # everything the task changed, under its own name
  git add -A
  git -c user.name="agent $n" -c user.email="agent-$n@example.invalid" commit -q -m "$1"
  echo "committed: $1"
}

need() {  # a file made by a dependency: here only if that task's work was integrated
  if [ ! -f "$1" ]; then
    echo "error: $1 is missing" >&2
    exit 4
  fi
}

usage() {  # the Usage line of README.md
  sed "s|^Usage: .*|Usage: $1|" README.md > README.md.new
  mv README.md.new README.md
}

case "$n" in
  2)
    cat > schema.sql <<'EOF'
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users, body TEXT NOT NULL);
CREATE TABLE tags (note_id INTEGER REFERENCES notes, tag TEXT NOT NULL);
EOF
    commit "Add schema.sql: users, notes and tags" ;;
  3)
    need schema.sql
    tables=$(grep -c '^CREATE TABLE' schema.sql)
    echo "schema.sql (from task 2) has $tables tables"
    mkdir -p notes
    printf '"""Repositories over the %s tables of schema.sql."""\n' "$tables" > notes/storage.py
    commit "Add notes/storage.py" ;;
  4)
    sleep 0.2
    need schema.sql
    echo "CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes');" >> schema.sql
    mkdir -p notes
    printf '"""search(query) over notes_fts."""\n' > notes/search.py
    echo "added notes_fts to schema.sql and wrote notes/search.py (not committed)" ;;
  5)
    need notes/storage.py
    need notes/search.py
    echo "building on notes/storage.py and notes/search.py from tasks 3 and 4"
    printf '"""REST endpoints for notes and search."""\n' > notes/api.py
    usage "python -m notes serve"
    commit "Add notes/api.py; README: how to serve" ;;
  6)
    sleep 1  # longer than task 5, which rewrites the same line: 6 is the one that conflicts
    printf '"""Import a folder of Markdown notes."""\n' > notes/importer.py
    usage "python -m notes import DIR"
    commit "Add notes/importer.py; README: how to import" ;;
  7)
    echo "rendering endpoint docstrings..."
    echo "error: endpoint POST /notes has no docstring" >&2
    exit 3 ;;
  8)
    echo "load test started; this one never finishes in time"
    sleep 30 ;;
  9)
    mkdir -p plans
    echo "# Sharing: a plan" > plans/sharing.md
    echo "wrote plans/sharing.md (not committed)"
    printf '{"status": "in-progress", "summary": "plan written, implementation not started"}' \
      > "$BATCH_RESULT_FILE" ;;
  *)
    echo "done" ;;
esac
