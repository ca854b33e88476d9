#!/usr/bin/env bash
# Integration tests (pytest tests/integration): the inventory plugin against real
# services on loopback (dnsmasq, a moto server, an HTTP server) and the Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dnsmasq >/dev/null && [ ! -x /usr/sbin/dnsmasq ]; then
  [ "$(id -u)" -eq 0 ] || { echo "integration: dnsmasq is missing and installing it needs root" >&2; exit 1; }
  echo "integration: installing Debian's dnsmasq-base (the binary only, no service)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null
fi
scripts/ensure-docker.sh
RTMPEDGE_SUITES=bookworm scripts/images.sh base
exec python -m pytest tests/integration "$@"
