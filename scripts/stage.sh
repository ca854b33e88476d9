#!/usr/bin/env bash
# Run one test stage with its output in build/logs/<stage>.log. The console gets
# "<stage>: started", a line every RTMPEDGE_PROGRESS_EVERY seconds (30) saying
# where a long stage is, then "<stage>: ok (Ns)" or, on failure, what failed
# (the failing task or assertion, pytest's failures) before the end of the log.
#   scripts/stage.sh NAME COMMAND [ARGS...]
set -uo pipefail
name=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
logdir=${RTMPEDGE_LOGDIR:-build/logs}
every=${RTMPEDGE_PROGRESS_EVERY:-30}
mkdir -p "$logdir"
# Logs are files: no terminal colours in them.
export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0
log=$logdir/$name.log
started=$SECONDS
mins() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

"$@" >"$log" 2>&1 &
pid=$!
# Stopping the stage (Ctrl-C, CI's timeout) stops what it runs too.
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 130' INT TERM
next=$((SECONDS + every))
shown=0
milestones() {  # the stage's own "== ..." lines (a scenario started or passed), as they come
  local all
  all=$(grep -a '^== ' "$log" 2>/dev/null)
  [ -n "$all" ] || return 0
  local count
  count=$(wc -l <<<"$all")
  if [ "$count" -gt "$shown" ]; then
    tail -n "$((count - shown))" <<<"$all" | sed "s/^/  $name: /"
    shown=$count
    next=$((SECONDS + every))
  fi
}
while kill -0 "$pid" 2>/dev/null; do
  sleep 1
  milestones
  if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
    echo "  $name $(mins $((SECONDS - started))): $(python3 "$here/stage_log.py" where "$log" 2>/dev/null)"
    next=$((SECONDS + every))
  fi
done
wait "$pid"
rc=$?
trap - INT TERM
milestones
took=$((SECONDS - started))
if [ "$rc" -eq 0 ]; then
  summary=$(grep -E '^=+ .*(passed|failed|error).* =+$' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//;s/ *$//')
  echo "$name: ok (${took}s)${summary:+ — $summary}"
else
  echo "$name: FAILED ($(mins "$took"), exit $rc)"
  cause=$(python3 "$here/stage_log.py" failure "$log" 2>/dev/null)
  if [ -n "$cause" ]; then
    echo "  what failed:"
    awk '{print "    " $0}' <<<"$cause"
  fi
  # Without a recognised cause (a linter's report, say) the end of the log is the cause.
  tail_lines=${RTMPEDGE_LOG_TAIL:-$([ -n "$cause" ] && echo 15 || echo 60)}
  echo "  last lines of $log:"
  tail -n "$tail_lines" "$log" | sed 's/^/    /'
  echo "$name: FAILED — whole log: $log"
fi
exit "$rc"
