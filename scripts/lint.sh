#!/usr/bin/env bash
# The lint, format and type gate: ruff (rules and line length in pyproject.toml), ruff's formatter,
# and mypy on the package. Runs every check and exits non-zero if any failed.
# `bash scripts/lint.sh --fix` first applies ruff's safe fixes and formats, then checks.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fix" ]; then
    ruff check --fix --quiet . || true
    ruff format --quiet .
fi

status=0
echo "== ruff check"
ruff check . || status=1
echo "== ruff format --check"
ruff format --check . || status=1
echo "== mypy rag eval"
mypy rag eval || status=1
exit $status
