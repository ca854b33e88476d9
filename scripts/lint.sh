#!/usr/bin/env bash
# yamllint, ansible-lint (production profile) and ruff over the whole tree.
set -euo pipefail
export NO_COLOR=1 ANSIBLE_NOCOLOR=1
cd "$(dirname "$0")/.."
echo "== yamllint"; yamllint --strict .
echo "== ansible-lint"; ansible-lint --profile production
echo "== ruff"; ruff check . && ruff format --check .
