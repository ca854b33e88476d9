#!/usr/bin/env bash
# Unit tests (pytest tests/unit). They check rendered configurations with the
# real HAProxy binary and the alerting rules with promtool, so Debian's haproxy
# and prometheus are installed when missing (without starting their services).
# No containers, no network beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deb.sh haproxy haproxy --no-start
scripts/ensure-deb.sh promtool prometheus --no-start
exec python -m pytest -v tests/unit "$@"
