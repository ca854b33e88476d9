#!/usr/bin/env bash
# Run the named test stages in order through scripts/stage.sh; stop at the
# first failure and name it. Ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
passed=0
started=$SECONDS
for stage in "$@"; do
  if scripts/stage.sh "$stage" "scripts/$stage.sh"; then
    passed=$((passed + 1))
  else
    echo "test: stage '$stage' failed after $((SECONDS - started))s"
    echo "stages: $passed passed, 1 failed"
    exit 1
  fi
done
echo "test: all stages passed in $((SECONDS - started))s"
echo "stages: $passed passed, 0 failed"
