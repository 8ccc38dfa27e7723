#!/usr/bin/env bash
# Creates (or refreshes) the Python virtual environment the tests use: the moto AWS emulator
# and the validators, pinned in tools/requirements.txt. Idempotent: does nothing when the venv
# already holds exactly these requirements.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${EKS_FA_VENV:-$here/.venv}
req=$here/tools/requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python=${PYTHON:-python3}
if ! "$python" -m venv --help >/dev/null 2>&1; then
  echo "setup-venv: '$python -m venv' is not available; install it (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
echo "setup-venv: creating $venv from $req" >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
