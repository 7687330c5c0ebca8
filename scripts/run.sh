#!/usr/bin/env bash
# Set up everything, then start the service on its embedded defaults (127.0.0.1:8001).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/devops-agent serve
