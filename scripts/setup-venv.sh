#!/usr/bin/env bash
# Create .venv with the pinned dev requirements and link the working tree into
# .collections/ so ansible resolves rtmpedge.balancer from this checkout.
# Silent when both are already in place and the requirement files are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.requirements.sha256
PYTHON=${PYTHON:-python3}
want=$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -d' ' -f1)

# Quiet pip: keep its errors, drop the notes about this machine's absent local indexes.
pip_install() {
  local out rc=0
  out=$("$VENV/bin/python" -m pip install --quiet "$@" 2>&1) || rc=$?
  grep -v 'is ignored: it is neither a file nor a directory' <<<"$out" >&2 || true
  [ "$rc" -eq 0 ] || echo "setup: ERROR: pip install $* failed" >&2
  return "$rc"
}

if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "setup: ERROR: Python 3.11+ is required ($PYTHON is $("$PYTHON" --version 2>&1))" >&2; exit 1; }
  echo "setup: installing the pinned Python requirements into $VENV (about 1-2 min the first time)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  pip_install --upgrade pip
  # A line every 30 s: the first install is long, and a silent console looks hung.
  started=$SECONDS
  ( while sleep 30; do echo "setup: still installing ($((SECONDS - started))s)"; done ) &
  ticker=$!
  trap 'kill "$ticker" 2>/dev/null || true' EXIT
  pip_install -r requirements-dev.txt -c constraints.txt
  kill "$ticker" 2>/dev/null || true
  echo "setup: done in $((SECONDS - started))s"
  echo "$want" >"$STAMP"
fi

# ansible.cfg points collections_path at .collections; the link makes the
# checkout itself the installed rtmpedge.balancer.
link=.collections/ansible_collections/rtmpedge/balancer
if [ "$(readlink "$link" 2>/dev/null)" != "../../.." ]; then
  mkdir -p "$(dirname "$link")"
  rm -rf "$link"
  ln -s ../../.. "$link"
fi
