# Sourced by bin/run and bin/test: make .venv and install a requirements file into it when it changed.
set -eu
cd "$(dirname "$0")/.."
: "${requirements:?set requirements before sourcing}"
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
wanted=$(cat requirements*.txt "$requirements" | sha256sum | cut -c1-16)
stamp=.venv/.installed-$(basename "$requirements" .txt)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$wanted" > "$stamp"
fi
