#!/usr/bin/env bash
# Unit tests (pytest tests/unit). They check rendered configurations with the
# real HAProxy binary, so Debian's haproxy is installed when missing (without
# starting its service). No containers, no network beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deb.sh haproxy haproxy --no-start
exec python -m pytest -v tests/unit "$@"
