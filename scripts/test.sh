#!/usr/bin/env bash
# Set up everything, check style, types and layering, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check devops_agent tests bench
.venv/bin/ruff format --check devops_agent tests bench
.venv/bin/mypy devops_agent
.venv/bin/lint-imports
# Two workers; each test file on one (tests/conftest.py groups them), so the slow, waiting
# end-to-end files overlap.
.venv/bin/pytest -q -n 2 --dist loadgroup "$@"
# The evaluation's quick subset on real containers: fails the build when the agent takes an
# unsafe action or a baseline beats it on any of its scenarios.
.venv/bin/devops-agent eval --quick --report "$(mktemp -d)"
