#!/usr/bin/env bash
# Unit tests (pytest tests/unit). No containers, no network beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m pytest tests/unit "$@"
