# Sourced by ./run and ./test: create .venv and install the pinned requirements when they changed.
ensure_venv() {
  local py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "workflow-engine needs Python 3.11 or newer (found: $("$py" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
    exit 1
  fi
  local stamp=.venv/.requirements.sha256
  local want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "==> preparing .venv (first run takes a minute)" >&2
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
  echo "$want" > "$stamp"
}
