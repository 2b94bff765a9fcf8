#!/bin/sh
# Install riskwatch from this checkout into a fresh virtual environment PREFIX, then check
# the install answers. The Containerfile runs exactly this script; so does the test
# tests/integration/test_install_script.py, where no image can be built or pulled.
#   sh deploy/install.sh PREFIX [EXTRAS]      e.g. sh deploy/install.sh /opt/riskwatch postgres,jit
set -eu
prefix=${1:?usage: install.sh PREFIX [EXTRAS]}
extras=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$prefix"
spec="$src"
[ -n "$extras" ] && spec="$src[$extras]"
"$prefix/bin/pip" install --no-cache-dir --disable-pip-version-check -q "$spec"
"$prefix/bin/riskwatch" --version
# the bundled configs are in the package: a production config can be written and validated
tmp=$(mktemp -d)
"$prefix/bin/riskwatch" config init --production "$tmp/etc" --state-dir "$tmp/state" >/dev/null
"$prefix/bin/riskwatch" run -c "$tmp/etc/engine.yaml" --check 2>/dev/null | tail -n 1
rm -rf "$tmp"
