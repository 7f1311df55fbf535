# Sourced by ./run and ./test: create .venv and install the pinned requirements when they changed.
#
# The installer is uv (from PyPI, pinned below), which downloads and installs in parallel: a cold build takes
# a fraction of pip's time. When uv cannot be installed or fails, pip installs the same pinned requirements.
# WORKFLOW_INSTALLER=pip forces pip.
UV_VERSION=0.13.9

say() { echo "==> $*" >&2; }

install_with_uv() {
  say "installing uv $UV_VERSION (the installer) from PyPI"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2 || return 1
  say "installing the pinned requirements with uv (requirements-dev.txt)"
  .venv/bin/uv pip install --python .venv/bin/python --compile-bytecode -r requirements-dev.txt >&2
}

install_with_pip() {
  say "installing the pinned requirements with pip (requirements-dev.txt)"
  .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt >&2
}

# The project itself, editable and without dependencies (they are the pinned requirements above): it puts the
# `wfe` console script ([project.scripts] in pyproject.toml) in .venv/bin.
install_project() {
  say "installing the project (the wfe command) into .venv"
  if [ -x .venv/bin/uv ] && .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e . >&2; then
    return 0
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e . >&2
}

ensure_venv() {
  local py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "workflow-engine needs Python 3.11 or newer (found: $("$py" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
    exit 1
  fi
  local stamp=.venv/.requirements.sha256
  local want
  want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local started=$SECONDS
  say "preparing .venv with $("$py" --version 2>&1)"
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  if [ "${WORKFLOW_INSTALLER:-uv}" = pip ] || ! install_with_uv; then
    [ "${WORKFLOW_INSTALLER:-uv}" = pip ] || say "uv failed; falling back to pip"
    install_with_pip
  fi
  install_project
  echo "$want" > "$stamp"
  say ".venv ready in $((SECONDS - started)) s"
}
