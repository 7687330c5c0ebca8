#!/usr/bin/env bash
# Set up everything, check style, types and layering, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check devops_agent tests bench
.venv/bin/ruff format --check devops_agent tests bench
.venv/bin/mypy devops_agent
.venv/bin/lint-imports
exec .venv/bin/pytest -q "$@"
