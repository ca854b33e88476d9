#!/usr/bin/env bash
# Integration tests (pytest tests/integration): the inventory plugin against real
# services on loopback (dnsmasq, a moto server, an HTTP server) and the Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deb.sh dnsmasq dnsmasq-base  # the binary only, no service
scripts/ensure-deb.sh haproxy haproxy --no-start  # the reconcile job runs against a real HAProxy
scripts/ensure-docker.sh
RTMPEDGE_SUITES=bookworm scripts/images.sh base
exec python -m pytest -v tests/integration "$@"
