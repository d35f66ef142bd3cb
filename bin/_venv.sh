# Sourced by bin/run and bin/test: make .venv and install a requirements file into it when it changed.
set -eu
cd "$(dirname "$0")/.."
: "${requirements:?set requirements before sourcing}"
# One install at a time: a second bin/run or bin/test started meanwhile waits for the first rather
# than finding a half-made .venv (and pip falling back to the system's Python). The lock is on the
# checkout's folder, so there is no lock file to clean up; without flock (not Linux) it is skipped.
if command -v flock >/dev/null 2>&1; then
  exec 9<.
  flock 9
fi
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
wanted=$(cat requirements*.txt "$requirements" | sha256sum | cut -c1-16)
stamp=.venv/.installed-$(basename "$requirements" .txt)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$wanted" > "$stamp"
fi
if command -v flock >/dev/null 2>&1; then
  flock -u 9  # the program that follows must not hold the install lock while it runs
  exec 9<&-
fi
