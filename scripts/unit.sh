#!/usr/bin/env bash
# Unit tests (pytest tests/unit). They check rendered configurations with the
# real HAProxy binary, so Debian's haproxy is installed when missing (without
# starting its service). No containers, no network beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
  [ "$(id -u)" -eq 0 ] || { echo "unit: haproxy is missing and installing it needs root" >&2; exit 1; }
  echo "unit: installing Debian's haproxy for the configuration checks"
  # policy-rc.d 101: install the package without starting a service on this machine.
  policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then own_policy=0; else own_policy=1; printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
  if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
fi
exec python -m pytest tests/unit "$@"
