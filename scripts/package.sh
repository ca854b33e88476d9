#!/usr/bin/env bash
# Build the collection tarball, install it into an empty collections path and
# syntax-check the collection's site playbook from the installed copy only.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/release
rm -rf "$out" && mkdir -p "$out"
ansible-galaxy collection build --force --output-path "$out" . >/dev/null
tarball=$(realpath "$out"/rtmpedge-balancer-*.tar.gz)
echo "built $tarball ($(du -k "$tarball" | cut -f1) KiB, $(tar -tzf "$tarball" | wc -l) entries)"
# From outside the checkout, with no ansible.cfg, so only the installed copy can resolve.
cd "$out"
export ANSIBLE_COLLECTIONS_PATH=$PWD/collections
unset ANSIBLE_CONFIG
ansible-galaxy collection install --offline -p "$ANSIBLE_COLLECTIONS_PATH" "$tarball" >/dev/null
echo "installed into $ANSIBLE_COLLECTIONS_PATH"
ansible-playbook rtmpedge.balancer.site --syntax-check -i localhost,
