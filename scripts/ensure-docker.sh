#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`: install docker.io from
# Debian when dockerd is missing, start dockerd in the background, wait for it.
# Silent when an engine already answers.
set -euo pipefail

LOG=${RTMPEDGE_DOCKERD_LOG:-/var/log/rtmpedge-dockerd.log}
WAIT=${RTMPEDGE_DOCKERD_WAIT:-60}

say() { echo "docker: $*"; }
die() { echo "docker: ERROR: $*" >&2; exit 1; }
engine_answers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

engine_answers && exit 0

[ "$(id -u)" -eq 0 ] || die "no engine answers and starting one needs root (run as root, or start dockerd yourself)"

command -v dockerd >/dev/null || say "installing docker.io from Debian (usually 30-60 s)"
"$(dirname "$0")/ensure-deb.sh" dockerd docker.io >/dev/null || die "cannot install docker.io"

if ! pgrep -x dockerd >/dev/null; then
  # A dockerd killed without cleanup leaves its pid file behind and refuses to start.
  rm -f /var/run/docker.pid
  say "starting dockerd in the background (log: $LOG)"
  nohup dockerd >>"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq "$WAIT"); do
  if engine_answers; then say "engine ready ($(docker version --format '{{.Server.Version}}'))"; exit 0; fi
  sleep 1
done
tail -n 20 "$LOG" >&2 || true
die "dockerd did not answer within ${WAIT}s; its log is $LOG"
