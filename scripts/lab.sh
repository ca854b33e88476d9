#!/usr/bin/env bash
# The lab end to end, as a user runs it (the `lab` test stage): make lab, then
# again (it must change nothing), scale up and down through the reconcile job
# without a reload, monitoring on the healthy lab, the fault tests (tests/lab), the project
# run as AWX runs it (scripts/awx-check.sh), then the cloud lab (make lab CLOUD=aws) and its scaling
# tests (tests/lab_cloud), and lab-down must leave no container or network behind.
set -euo pipefail
cd "$(dirname "$0")/.."
lab() { python scripts/lab.py "$@"; }
fail() { echo "lab check: $*" >&2; exit 1; }
trap 'lab down >/dev/null 2>&1 || true; rm -rf "${out:-}"' EXIT

lab down >/dev/null
lab up
# Each run is shown as it happens and kept for the checks below.
out=$(mktemp -d)
lab up | tee "$out/second"
second=$(cat "$out/second")
for host in rtmpedge-lb1 rtmpedge-lb2 rtmpedge-media1 rtmpedge-media2 rtmpedge-media3 rtmpedge-prometheus; do
  grep -Eq "^$host +: ok=[0-9]+ +changed=0 " <<<"$second" || fail "the second make lab changed $host"
done

lab scale 4 | tee "$out/up"
up=$(cat "$out/up")
[ "$(grep -c ': .*reload=no.*\[workers \([0-9 ]*\) -> \1\]' <<<"$up")" = 2 ] \
  || fail "scaling up reloaded HAProxy or failed on a balancer"
[ "$(grep -c '^  rtmpedge-media4 .* UP' <<<"$up")" = 2 ] || fail "rtmpedge-media4 is not UP on both balancers"

lab scale 3 | tee "$out/down"
down=$(cat "$out/down")
grep -q 'rtmpedge-media4 carries no stream on any balancer: safe to terminate' <<<"$down" || fail "no drain report"
[ "$(grep -c ': .*reload=no.*\[workers \([0-9 ]*\) -> \1\]' <<<"$down")" = 2 ] || fail "scaling down reloaded HAProxy"
! grep -q '^  rtmpedge-media4 ' <<<"$down" || fail "rtmpedge-media4 is still in a backend"

# Monitoring first, on the healthy lab (no alert may fire there); then the fault tests,
# some of which check that their alert fires.
python -m pytest -v -p no:cacheprovider tests/lab/test_monitoring.py || fail "a monitoring test failed"
python -m pytest -v -p no:cacheprovider --ignore tests/lab/test_monitoring.py tests/lab || fail "a fault test failed"
# The project as AWX runs it, against this lab: the execution environment, an inventory
# update, site.yml twice and the drain job through ansible-runner (make awx-check).
scripts/awx-check.sh || fail "the AWX check failed"

# The cloud lab (docs/scaling.md): the media servers an Auto Scaling group and an ECS service on a
# local AWS; scale-out at runtime, scale-in that never takes a busy server, the guard's fail-safe.
lab down >/dev/null
CLOUD=aws lab up
python -m pytest -v -p no:cacheprovider tests/lab_cloud || fail "a cloud lab test failed"

lab down
trap - EXIT
[ -z "$(docker ps -aq --filter label=rtmpedge.lab=1)" ] || fail "containers left behind"
[ -z "$(docker network ls -q --filter label=rtmpedge.lab=1)" ] || fail "networks left behind"
echo "lab check: passed"
