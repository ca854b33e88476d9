#!/usr/bin/env bash
# Run one test stage with its output in build/logs/<stage>.log and print one
# line: "<stage>: ok (Ns)" or "<stage>: FAILED (Ns)" followed by the log tail.
#   scripts/stage.sh NAME COMMAND [ARGS...]
set -uo pipefail
name=$1; shift
logdir=${RTMPEDGE_LOGDIR:-build/logs}
mkdir -p "$logdir"
# Logs are files: no terminal colours in them.
export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0
log=$logdir/$name.log
started=$SECONDS
"$@" >"$log" 2>&1
rc=$?
took=$((SECONDS - started))
if [ "$rc" -eq 0 ]; then
  summary=$(grep -E '^=+ .*(passed|failed|error).* =+$' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//;s/ *$//')
  echo "$name: ok (${took}s)${summary:+ — $summary}"
else
  echo "$name: FAILED (${took}s, exit $rc) — last lines of $log:"
  tail -n "${RTMPEDGE_LOG_TAIL:-60}" "$log" | sed 's/^/    /'
  echo "$name: FAILED"
fi
exit "$rc"
