#!/usr/bin/env bash
# make release: the collection as a user installs it.
#  1. a copy of the checkout gets its CHANGELOG.rst: galaxy.yml's version released from the
#     fragments (antsibull-changelog release; the checkout's fragments stay), or, once that
#     version is in changelogs/changelog.yaml, as its release wrote it;
#  2. the tarball is built from that copy, installed into an empty collections
#     path, and site.yml is syntax-checked from the installed copy only;
#  3. ansible-doc renders every module, plugin and role of the installed copy;
#  4. the committed tree installs from git as the README says, and is used the same way;
#  5. execution-environment.yml makes an ansible-builder context with the
#     tarball, and the installed collection's EE dependencies are found.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build/release
version=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
rm -rf "$out" && mkdir -p "$out/src"

# Tracked and new files as they are in the working tree (a file deleted but not committed is left out).
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$out/src"
if python -c 'import sys, yaml; sys.exit(sys.argv[1] not in yaml.safe_load(open("changelogs/changelog.yaml"))["releases"])' "$version"; then
  # Released already: CHANGELOG.rst as the release wrote it; fragments since then wait for the next version.
  (cd "$out/src" && antsibull-changelog generate >/dev/null)
  pending=$(find changelogs/fragments -name '*.yml' | wc -l)
  [ "$pending" -eq 0 ] || echo "changelog: $pending fragments wait for the release after $version (bump galaxy.yml)"
else
  (cd "$out/src" && antsibull-changelog release --version "$version" >/dev/null)
fi
echo "CHANGELOG.rst for $version: $(grep -c '^- ' "$out/src/CHANGELOG.rst") entries"

ansible-galaxy collection build --force --output-path "$out" "$out/src" >/dev/null
tarball=$out/rtmpedge-balancer-$version.tar.gz
cp "$tarball" "$out/rtmpedge-balancer.tar.gz"  # the name execution-environment.yml uses
echo "built $tarball ($(du -k "$tarball" | cut -f1) KiB, $(tar -tzf "$tarball" | wc -l) entries)"
tar -tzf "$tarball" | grep -x CHANGELOG.rst >/dev/null || { echo "CHANGELOG.rst is not in the tarball" >&2; exit 1; }
if tar -tzf "$tarball" | grep -q '^inventories/lab'; then
  echo "the lab's inventory (and its password) is in the tarball" >&2; exit 1
fi
# Every client library a discovery source imports is in the execution environment's requirements.
python - <<'PY'
import re, sys
sys.path.insert(0, ".collections")
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.registry import TYPES, python_requirements
listed = {re.split(r"[<>=!~ ;#]", line.strip())[0].lower() for line in open("meta/ee-requirements.txt") if line.strip() and not line.startswith("#")}
missing = sorted(set(python_requirements(list(TYPES))) - listed)
if missing:
    sys.exit(f"meta/ee-requirements.txt lacks what discovery sources import: {', '.join(missing)}")
print(f"EE requirements cover every source type's libraries: {', '.join(python_requirements(list(TYPES)))}")
PY

# From outside the checkout, with no ansible.cfg, so only the installed copy can resolve.
cd "$out"
export ANSIBLE_COLLECTIONS_PATH=$PWD/collections
unset ANSIBLE_CONFIG
ansible-galaxy collection install --offline -p "$ANSIBLE_COLLECTIONS_PATH" "$tarball" >/dev/null
echo "installed into $ANSIBLE_COLLECTIONS_PATH"
ansible-playbook rtmpedge.balancer.site --syntax-check -i localhost,

installed=$ANSIBLE_COLLECTIONS_PATH/ansible_collections/rtmpedge/balancer
rendered=0
for file in "$installed"/plugins/modules/*.py "$installed"/plugins/inventory/*.py "$installed"/plugins/filter/*.yml; do
  kind=$(basename "$(dirname "$file")")
  case $kind in modules) kind=module ;; esac
  ansible-doc -t "$kind" "rtmpedge.balancer.$(basename "${file%.*}")" >/dev/null
  rendered=$((rendered + 1))
done
for role in "$installed"/roles/*/; do
  ansible-doc -t role "rtmpedge.balancer.$(basename "$role")" >/dev/null
  rendered=$((rendered + 1))
done
echo "ansible-doc rendered $rendered modules, inventory plugins, filters and roles"

# As the README installs it from git (the committed tree), into an empty path: the other
# collections it needs come with the `ansible` package, as they would for a user.
git_path=$out/from-git
commit=$(git -C "$root" rev-parse HEAD)
ANSIBLE_COLLECTIONS_PATH=$git_path ansible-galaxy collection install -p "$git_path" "git+file://$root,$commit" \
  >"$out/from-git.log" 2>&1 || { cat "$out/from-git.log" >&2; exit 1; }
ANSIBLE_COLLECTIONS_PATH=$git_path ansible-doc -t inventory rtmpedge.balancer.media_servers >/dev/null
ANSIBLE_COLLECTIONS_PATH=$git_path ansible-playbook rtmpedge.balancer.site --syntax-check -i localhost, >/dev/null 2>&1 \
  || { echo "the collection installed from git does not syntax-check rtmpedge.balancer.site" >&2; exit 1; }
echo "installed from git ($commit) into an empty path: ansible-doc and the site playbook's syntax check pass"

cd "$root"
ansible-builder create -f execution-environment.yml -c "$out/ee" >/dev/null
[ -s "$out/ee/_build/collections/rtmpedge-balancer.tar.gz" ] || { echo "the EE context lacks the collection" >&2; exit 1; }
deps=$(ansible-builder introspect "$ANSIBLE_COLLECTIONS_PATH")
for wanted in boto3 dnspython docker openssh-client; do
  grep -q "$wanted" <<<"$deps" || { echo "the EE dependencies lack $wanted:" >&2; echo "$deps" >&2; exit 1; }
done
echo "execution environment: context in $out/ee, dependencies from meta/execution-environment.yml found"
