#!/usr/bin/env bash
# Install what Wangge needs on a Debian 12 machine; a second run changes nothing and returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
# nodejs and npm install the supervisors' page; chromium (with a Chinese font for its
# screenshots) runs its browser tests.
apt_packages=(postgresql-15 postgresql-15-postgis-3 gdal-bin redis-server chromium fonts-wqy-zenhei)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Debian's own Python makes virtual environments only with python3-venv.
command -v "$python" >/dev/null || missing+=(python3)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
"$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  # Another install on the machine holds dpkg's lock for a while: wait for it.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    "${missing[@]}" >/dev/null
fi

stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/pip ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing Python packages into .venv"
  [ -x .venv/bin/pip ] || "$python" -m venv --clear .venv
  # Through the venv's python: a copied .venv's pip script still names the original's python.
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# The page's front-end packages, exactly as the lock file pins them (no install scripts run).
web=backend/dashboard/web
stamp=$web/node_modules/.package-lock.sha256
want=$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing the dashboard's npm packages"
  (cd "$web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
