#!/usr/bin/env bash
# make test: install what is missing, give the suite a fresh PostGIS database, run everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL=$(python3 scripts/devdb.py url wangge_test --fresh)
fi
export TEST_DATABASE_URL
exec .venv/bin/python -m pytest "$@"
