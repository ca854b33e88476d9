#!/usr/bin/env bash
# Placeholder for a target whose issue has not landed yet: says so and fails.
echo "make $1: not implemented yet — it arrives with $2." >&2
exit 2
