# Sourced by course.sh: create or refresh the virtual environment from the pinned requirements.
# The install is skipped when the requirements and pyproject.toml have not changed since the
# last successful install (a stamp file holds their checksum).
VENV="${CONVAE_VENV:-.venv}"
PYTHON_FOR_VENV="${PYTHON:-python3.11}"
command -v "$PYTHON_FOR_VENV" >/dev/null 2>&1 || PYTHON_FOR_VENV=python3
if ! "$PYTHON_FOR_VENV" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "course.sh: needs Python 3.11 (torch==2.13.0 is pinned for it); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON_FOR_VENV" -m venv "$VENV"
PY="$VENV/bin/python"
stamp="$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$stamp" ]; then
  echo "course.sh: installing the pinned environment into $VENV (first run takes a few minutes)" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$stamp" > "$VENV/.installed"
fi
export PATH="$PWD/$VENV/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1
