#!/usr/bin/env bash
# Build the local container images the tests and the lab use. No registry is
# reachable, so the Debian bases come from debootstrap + `docker import`, and
# the test peers are built on top of them with images/<name>/Dockerfile.
#
#   scripts/images.sh [--force] [base|peers|all]   (default: all)
#
# An image is skipped when it exists and carries the label of the current
# recipe; --force rebuilds. Balancers always run the bare base image:
# installing HAProxy is the role's job.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
REPO=rtmpedge
SUITES=${RTMPEDGE_SUITES:-"bookworm trixie"}
PEER_SUITE=bookworm
PEERS="media-nginx-rtmp publisher-ffmpeg prometheus ee-base"
BASE_PACKAGES=python3,python3-apt,systemd,systemd-sysv,iproute2,procps,ca-certificates,sudo
# Units that cannot work, or only get in the way, inside a container.
MASKED_UNITS="getty.target console-getty.service systemd-firstboot.service systemd-remount-fs.service systemd-udevd.service"
LABEL=org.rtmpedge.recipe
# Bump when the way base images are built changes (the package list counts by itself).
BASE_RECIPE_VERSION=2
DEB_CACHE=/var/cache/rtmpedge/debootstrap  # downloaded .debs, reused by rebuilds

force=0
what=all
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    base|peers|all) what=$arg ;;
    *) echo "usage: $0 [--force] [base|peers|all]" >&2; exit 2 ;;
  esac
done

say() { echo "images: $*"; }
die() { echo "images: ERROR: $*" >&2; exit 1; }

current_rootfs=""
# debootstrap mounts /proc and /sys inside the rootfs: unmount before removing,
# and never cross into another file system.
remove_rootfs() {
  [ -n "$current_rootfs" ] || return 0
  umount -R "$current_rootfs/proc" "$current_rootfs/sys" 2>/dev/null || true
  rm -rf --one-file-system "$current_rootfs"
  current_rootfs=""
}
trap remove_rootfs EXIT

quiet_build() {  # docker build ARGS...: output only when it fails
  local out
  out=$(DOCKER_BUILDKIT=0 docker build "$@" 2>&1) || { echo "$out" >&2; return 1; }
}

# A rebuilt tag leaves the previous image dangling: drop it unless a container uses it.
drop_previous() {  # image-id-before-build
  if [ -n "$1" ]; then docker image rm "$1" >/dev/null 2>&1 || true; fi
}

recipe_of() { cat "$@" | sha256sum | cut -c1-16; }

up_to_date() {  # image recipe
  [ "$force" -eq 0 ] || return 1
  [ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = "$2" ]
}

build_base() {  # suite
  local suite=$1 image=$REPO/debian-systemd:$1 recipe mirror rootfs started previous
  recipe=$(printf "%s\n" "$BASE_RECIPE_VERSION" "$BASE_PACKAGES" "$MASKED_UNITS" "$suite" | recipe_of -)
  up_to_date "$image" "$recipe" && return 0
  previous=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  "$here/ensure-deb.sh" debootstrap debootstrap || die "cannot install debootstrap"
  mirror=$(python3 "$here/debian_mirror.py") || die "no Debian mirror configured on this machine"
  rootfs=$(mktemp -d /var/tmp/rtmpedge-rootfs-XXXXXX)
  current_rootfs=$rootfs
  started=$SECONDS
  say "building $image with debootstrap (usually 45-90 s)"
  mkdir -p "$DEB_CACHE/$suite"
  debootstrap --cache-dir="$DEB_CACHE/$suite" --variant=minbase --include="$BASE_PACKAGES" "$suite" "$rootfs" "$mirror" \
    >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log" >&2; die "debootstrap $suite failed (log: $rootfs.log)"; }
  rm -f "$rootfs.log"
  for unit in $MASKED_UNITS; do ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"; done
  # Keep the package lists, as on any installed host: an empty lists dir looks
  # freshly updated to apt's cache_valid_time and hides every package.
  rm -f "$rootfs"/var/cache/apt/archives/*.deb
  : >"$rootfs/etc/machine-id"
  tar -C "$rootfs" -c . | docker import - "$image-rootfs" >/dev/null
  # `docker import --change` cannot set STOPSIGNAL: one small build step adds the metadata.
  printf '%s\n' "FROM $image-rootfs" 'ENV container=docker' 'STOPSIGNAL SIGRTMIN+3' \
    'CMD ["/lib/systemd/systemd"]' "LABEL $LABEL=$recipe" \
    | quiet_build -t "$image" -
  docker image rm "$image-rootfs" >/dev/null
  remove_rootfs
  drop_previous "$previous"
  say "built $image in $((SECONDS - started)) s"
}

# Certificate authorities this machine trusts beyond Debian's (an egress proxy's, say): an
# image whose Dockerfile copies host-ca/ gets them, to reach https package indexes as the host does.
HOST_CA_DIR=/usr/local/share/ca-certificates

build_peer() {  # name
  local image=$REPO/$1:$PEER_SUITE dir=$root/images/$1 recipe base_id started previous context
  base_id=$(docker image inspect --format '{{.Id}}' "$REPO/debian-systemd:$PEER_SUITE")
  context=$(mktemp -d /var/tmp/rtmpedge-context-XXXXXX)
  cp -r "$dir/." "$context/"
  if grep -q 'host-ca/' "$dir/Dockerfile"; then
    mkdir -p "$context/host-ca"
    find "$HOST_CA_DIR" -maxdepth 2 -name '*.crt' -exec cp {} "$context/host-ca/" \; 2>/dev/null || true
  fi
  recipe=$({ echo "$base_id"; find "$context" -type f | sort | xargs cat; } | recipe_of -)
  if up_to_date "$image" "$recipe"; then rm -rf "$context"; return 0; fi
  previous=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  started=$SECONDS
  say "building $image (usually 30-120 s)"
  quiet_build --label "$LABEL=$recipe" \
    --build-arg "BASE=$REPO/debian-systemd:$PEER_SUITE" -t "$image" "$context" \
    || { rm -rf "$context"; die "docker build $image failed"; }
  rm -rf "$context"
  drop_previous "$previous"
  say "built $image in $((SECONDS - started)) s"
}

"$here/ensure-docker.sh"
case "$what" in
  base) for s in $SUITES; do build_base "$s"; done ;;
  peers) build_base "$PEER_SUITE"; for p in $PEERS; do build_peer "$p"; done ;;
  all) for s in $SUITES; do build_base "$s"; done; for p in $PEERS; do build_peer "$p"; done ;;
esac
