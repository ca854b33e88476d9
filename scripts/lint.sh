#!/usr/bin/env bash
# yamllint, ansible-lint (production profile) and ruff over the whole tree; the
# roles' generated variable references and the changelog fragments are current.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== yamllint"; yamllint --strict .
echo "== ansible-lint"; ansible-lint --profile production
# Two commands, not `a && b`: under set -e a failure on the left of && would not stop the script.
echo "== ruff"; ruff check .; ruff format --check .
echo "== role READMEs"; python scripts/role_docs.py --check
echo "== generated plugin docs (source options, HAProxy locations)"; python scripts/plugin_docs.py --check
echo "== changelog fragments"; antsibull-changelog lint
