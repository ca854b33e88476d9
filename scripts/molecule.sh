#!/usr/bin/env bash
# Run molecule scenarios (all of molecule/*/ when none are named), after making
# sure a docker engine answers and the base images exist.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-docker.sh
scripts/images.sh all
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$f")")"); done
fi
for s in "${scenarios[@]}"; do
  echo "== molecule test -s $s"
  started=$SECONDS
  molecule --base-config molecule/config.yml test -s "$s"
  echo "== molecule scenario $s passed in $((SECONDS - started))s"
done
