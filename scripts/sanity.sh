#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection laid out as
# ansible_collections/rtmpedge/balancer (ansible-test requires that path).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
python=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
work=${RTMPEDGE_SANITY_DIR:-${TMPDIR:-/tmp}/rtmpedge-sanity}
dest=$work/ansible_collections/rtmpedge/balancer

# ansible-test bootstraps pip in each of its venvs with a script it downloads
# from a host CI cannot reach, unless a copy is cached. Ours uses the
# interpreter's own ensurepip, then installs the pip version ansible-test asks for.
pip_version=$(python - <<'PY'
import inspect, re
from ansible_test._internal import python_requirements as r
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(r.get_venv_packages)).group(1))
PY
)
get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if ! cmp -s scripts/ansible_test_get_pip.py "$get_pip"; then
  mkdir -p "$(dirname "$get_pip")"
  cp scripts/ansible_test_get_pip.py "$get_pip"
fi

# The shellcheck sanity test is skipped with a mere warning when it is missing.
scripts/ensure-deb.sh shellcheck shellcheck

# Only what git would ship: tracked files and untracked ones not ignored.
# tests/output keeps ansible-test's venvs between runs.
cache=$work/output-cache
rm -rf "$cache" && mkdir -p "$work"
[ -d "$dest/tests/output" ] && mv "$dest/tests/output" "$cache"
rm -rf "$work/ansible_collections" && mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -c | tar -x -C "$dest"

if [ -d "$cache" ]; then mkdir -p "$dest/tests" && mv "$cache" "$dest/tests/output"; fi

cd "$dest"
ansible-test sanity --venv --python "$python" --color no "$@"
echo "sanity: ansible-test sanity clean on $here (copy in $dest)"
