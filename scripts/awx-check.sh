#!/usr/bin/env bash
# make awx-check: this repository as an AWX project, run as AWX runs it (docs/awx.md).
#  1. make release: the collection tarball the execution environment installs;
#  2. ansible-builder build of execution-environment.yml with docker, on the local
#     Debian 12 / Python 3.11 base (images/ee-base: no registry is reachable here);
#  3. the lab (make lab) when it is not up;
#  4. tests/awx: an inventory update, site.yml twice and the drain job through
#     ansible-runner with process isolation in that image, with AWX's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${RTMPEDGE_EE_IMAGE:-rtmpedge-ee:0.2.0}
say() { echo "== awx-check: $*"; }

scripts/ensure-docker.sh
scripts/images.sh peers
say "make release (the collection tarball for the execution environment)"
scripts/package.sh >/dev/null
say "ansible-builder build -f execution-environment.yml -t $image (docker; base rtmpedge/ee-base:bookworm)"
started=$SECONDS
ansible-builder build -f execution-environment.yml -c build/ee --container-runtime docker -t "$image" \
  --build-arg EE_BASE_IMAGE=rtmpedge/ee-base:bookworm -v 1 >build/ee-build.log 2>&1 \
  || { tail -n 40 build/ee-build.log >&2; echo "awx-check: the execution environment did not build (build/ee-build.log)" >&2; exit 1; }
# Through the image's entrypoint, as AWX runs it: it gives an arbitrary uid its HOME (/runner).
version=$(docker run --rm "$image" ansible --version) || { echo "awx-check: ansible does not run in $image" >&2; exit 1; }
say "built $image in $((SECONDS - started)) s: ${version%%$'\n'*}"
if [ -z "$(docker ps -q --filter name=rtmpedge-lb1 --filter status=running)" ]; then
  say "the lab is not up: make lab"
  python scripts/lab.py up
fi
RTMPEDGE_EE_IMAGE=$image python -m pytest -v -p no:cacheprovider tests/awx
