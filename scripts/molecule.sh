#!/usr/bin/env bash
# Run molecule scenarios (all of molecule/*/ when none are named), after making
# sure a docker engine answers and the base images exist. Every scenario runs,
# even after one failed; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
scripts/ensure-docker.sh || exit 1
scripts/images.sh all || exit 1
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$f")")"); done
fi
failed=()
for s in "${scenarios[@]}"; do
  echo "== molecule test -s $s"
  started=$SECONDS
  if molecule --base-config molecule/config.yml test -s "$s"; then
    echo "== molecule scenario $s passed in $((SECONDS - started))s"
  else
    echo "== molecule scenario $s FAILED after $((SECONDS - started))s"
    failed+=("$s")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "== molecule: failed scenarios: ${failed[*]}"
  exit 1
fi
