#!/usr/bin/env bash
# make run: install what is missing, start the database, migrate, load the demo once, serve.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL=$(python3 scripts/devdb.py url wangge)
fi
export DATABASE_URL
# WANGGE_REPLICAS=1: a hot standby of the private cluster answers statistics, GIS, tiles and exports.
if [ "${WANGGE_REPLICAS:-0}" = "1" ] && [ -z "${DATABASE_REPLICA_URL:-}" ]; then
  DATABASE_REPLICA_URL=$(python3 scripts/devdb.py replica-url wangge)
  export DATABASE_REPLICA_URL
fi
if [ -z "${SECRET_KEY:-}" ]; then
  mkdir -p var
  [ -s var/secret_key ] || python3 -c 'import secrets; print(secrets.token_urlsafe(48))' > var/secret_key
  SECRET_KEY=$(cat var/secret_key)
fi
export SECRET_KEY
host=${WANGGE_HOST:-127.0.0.1}
port=${WANGGE_PORT:-5000}

# Workers bind with SO_REUSEPORT, which would let a second server share the port unnoticed.
# SO_REUSEADDR lets the check pass a port left in TIME_WAIT by a stopped server, not a listened one.
if ! python3 -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))' "$host" "$port" 2>/dev/null; then
  echo "Port $port on $host is in use (is Wangge already running?); set WANGGE_PORT to use another." >&2
  exit 1
fi

# Through the venv's python: a copied .venv's scripts still name the original's python.
.venv/bin/python -m flask --app backend.wsgi demo prepare

cat <<MSG

Wangge is serving on http://$host:$port
  API:      http://$host:$port/api/v1/areas
  Docs:     http://$host:$port/docs  (OpenAPI document: http://$host:$port/openapi.json)
  Health:   http://$host:$port/healthz  http://$host:$port/readyz
  Metrics:  http://$host:$port/metrics  (from this machine, or with an admin's token)
  Sign in: POST /api/v1/auth/token with {"username": ..., "password": ...} (demo logins above)
Try:
  curl -H 'X-API-Key: wg_demogis1_conghua-demo-gis-key-not-secret' \\
       'http://$host:$port/api/v1/lookup?lon=113.640&lat=23.650&crs=gcj02'
MSG
# --preload imports the app once and forks the workers from it: a faster start. --reuse-port gives
# each worker its own listening socket, so the kernel spreads connections over the workers; without
# it the first idle worker accepts every keep-alive connection and the others stand by.
# scripts/gunicorn.conf.py sets up the metrics of all workers and runs housekeeping beside them.
# The app logs one JSON line per request to stderr; gunicorn's access log would repeat it with
# the query string, which may carry an API key.
exec .venv/bin/python -m gunicorn -c scripts/gunicorn.conf.py -b "$host:$port" -w "${WANGGE_WORKERS:-2}" \
  --worker-class gthread --threads "${WANGGE_THREADS:-4}" --reuse-port --preload backend.wsgi:app
