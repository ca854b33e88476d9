#!/usr/bin/env bash
# Run the named test stages in order through scripts/stage.sh. Every stage runs
# even after one failed, so one run shows every failure (FAIL_FAST=1 stops at
# the first). Ends with the stages' times and one summary line.
#   scripts/run-stages.sh [--beside "STAGE ..."] STAGE ...
# --beside: these stages run in order in a second lane, at the same time as the
# others. For the stages without containers beside the container stages: on two
# cores each lane is mostly one busy process, so the short lane costs little.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
beside=()
if [ "${1:-}" = --beside ]; then
  read -r -a beside <<<"$2"
  shift 2
fi
started=$SECONDS
lane_results=$(mktemp)
trap 'rm -f "$lane_results"' EXIT

run_lane() {  # STAGE...: one line per stage to $lane_results: "ok|FAILED STAGE SECONDS"
  local stage stage_started
  for stage in "$@"; do
    stage_started=$SECONDS
    if scripts/stage.sh "$stage" "scripts/$stage.sh"; then
      echo "ok $stage $((SECONDS - stage_started))" >>"$lane_results"
    else
      echo "FAILED $stage $((SECONDS - stage_started))" >>"$lane_results"
      [ "${FAIL_FAST:-0}" = 1 ] && return 1
    fi
  done
  return 0
}

if [ ${#beside[@]} -gt 0 ]; then
  echo "test: stages $*, and beside them ${beside[*]} (logs in ${RTMPEDGE_LOGDIR:-build/logs}/)"
  run_lane "${beside[@]}" &
  beside_pid=$!
  trap 'kill -TERM "$beside_pid" 2>/dev/null; wait "$beside_pid"; rm -f "$lane_results"; exit 130' INT TERM
else
  echo "test: stages $* (logs in ${RTMPEDGE_LOGDIR:-build/logs}/)"
fi
run_lane "$@"
[ ${#beside[@]} -gt 0 ] && wait "$beside_pid"

passed=0 failed=() times=()
# In the order the stages were named.
for stage in "${beside[@]}" "$@"; do
  read -r verdict _name seconds < <(grep -E "^(ok|FAILED) $stage " "$lane_results")
  [ -n "${verdict:-}" ] || continue  # not run: FAIL_FAST stopped its lane
  if [ "$verdict" = ok ]; then
    passed=$((passed + 1))
    times+=("$stage ${seconds}s")
  else
    failed+=("$stage")
    times+=("$stage ${seconds}s FAILED")
  fi
  verdict=""
done
joined=$(IFS=,; echo "${times[*]}")
echo "test: stage times: ${joined//,/, }"
if [ ${#failed[@]} -gt 0 ]; then
  echo "test: failed: ${failed[*]} (after $((SECONDS - started))s)"
  echo "stages: $passed passed, ${#failed[@]} failed"
  exit 1
fi
echo "test: all stages passed in $((SECONDS - started))s"
echo "stages: $passed passed, 0 failed"
