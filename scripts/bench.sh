#!/usr/bin/env bash
# make bench: the lab plus the bench's own requirements, then bench/run.py.
# BENCH_QUICK=1 for the short run; see bench/run.py for the other knobs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c 'import matplotlib' 2>/dev/null; then
  echo "bench: installing matplotlib into .venv (requirements-bench.txt)"
  .venv/bin/python -m pip install --quiet -r requirements-bench.txt -c constraints.txt 2>&1 \
    | grep -v 'is ignored: it is neither a file nor a directory' >&2 || true
  .venv/bin/python -c 'import matplotlib' || { echo "bench: ERROR: matplotlib did not install" >&2; exit 1; }
fi
scripts/ensure-deb.sh nsenter util-linux
scripts/ensure-deb.sh haproxy haproxy --no-start  # `haproxy -c` of the 10,000-server config
exec .venv/bin/python bench/run.py
