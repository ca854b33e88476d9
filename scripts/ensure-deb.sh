#!/usr/bin/env bash
# Install a Debian package when the command it provides is missing. Silent when present.
#   scripts/ensure-deb.sh COMMAND PACKAGE [--no-start]
# --no-start: install without starting the package's service on this machine (policy-rc.d 101).
set -euo pipefail
command=$1 package=$2 no_start=${3:-}

present() { command -v "$command" >/dev/null || [ -x "/usr/sbin/$command" ]; }
present && exit 0
[ "$(id -u)" -eq 0 ] || { echo "$command is missing and installing $package needs root" >&2; exit 1; }
# One install at a time: make test runs stages side by side, and apt takes its locks without waiting.
exec 9>/var/lock/rtmpedge-ensure-deb.lock
flock 9
present && exit 0  # installed while this one waited
echo "installing Debian's $package (for $command)"
policy=/usr/sbin/policy-rc.d own_policy=0
if [ "$no_start" = --no-start ] && [ ! -e "$policy" ]; then
  own_policy=1
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
fi
status=0
{ apt-get update -qq >/dev/null \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null; } || status=$?
if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
[ "$status" -eq 0 ] || { echo "apt-get install $package failed" >&2; exit "$status"; }
