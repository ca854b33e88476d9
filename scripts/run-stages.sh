#!/usr/bin/env bash
# Run the named test stages in order through scripts/stage.sh. Every stage runs
# even after one failed, so one run shows every failure (FAIL_FAST=1 stops at
# the first). Ends with the stages' times and one summary line.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=()
times=()
started=$SECONDS
echo "test: stages $* (logs in ${RTMPEDGE_LOGDIR:-build/logs}/)"
for stage in "$@"; do
  stage_started=$SECONDS
  if scripts/stage.sh "$stage" "scripts/$stage.sh"; then
    passed=$((passed + 1))
  else
    failed+=("$stage")
    if [ "${FAIL_FAST:-0}" = 1 ]; then
      times+=("$stage $((SECONDS - stage_started))s FAILED")
      break
    fi
  fi
  times+=("$stage $((SECONDS - stage_started))s")
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
