#!/usr/bin/env bash
# yamllint, ansible-lint (production profile) and ruff over the whole tree.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== yamllint"; yamllint --strict .
echo "== ansible-lint"; ansible-lint --profile production
echo "== ruff"; ruff check . && ruff format --check .
