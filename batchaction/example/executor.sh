#!/bin/sh
# The demo's executor: what an agent or script would do for each task.
# batchaction runs it once per task, with BATCH_TASK_NUMBER and friends in the environment.
set -eu
n="$BATCH_TASK_NUMBER"
echo "task $n: $BATCH_TASK_TITLE"
echo "wave $BATCH_TASK_WAVE, after: ${BATCH_TASK_DEPENDENCIES:-nothing}"
case "$n" in
  7)
    echo "rendering endpoint docstrings..."
    echo "error: endpoint POST /notes has no docstring" >&2
    exit 3 ;;
  8)
    echo "load test started; this one never finishes in time"
    sleep 30 ;;
  9)
    echo "wrote plans/sharing.md"
    printf '{"status": "in-progress", "summary": "plan written, implementation not started"}' \
      > "$BATCH_RESULT_FILE" ;;
  *)
    sleep 0.3
    echo "done" ;;
esac
