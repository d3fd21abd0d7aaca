#!/usr/bin/env bash
# The course's two entry points; both set up the virtual environment themselves.
#   bash course.sh main   regenerate release/, grade the example class, export, print grades
#   bash course.sh test   the whole test suite (installs the system packages it needs as root)
# Any other arguments are passed to `python -m convae` (e.g. `bash course.sh student-bundle`).
set -euo pipefail
cd "$(dirname "$0")"
[ "${1:-}" = test ] && source scripts/system-packages.sh
source scripts/setup-venv.sh

case "${1:-}" in
  # Two pytest-xdist workers, whole test files each (module fixtures grade a class once).
  test) shift; exec "$PY" -m pytest -q -n "${CONVAE_TEST_WORKERS:-2}" --dist loadfile "$@" ;;
  "") echo "usage: bash course.sh main|test|grade|release|student-bundle|examples|table|similarity|export-lms|items|marking-sheets|import-marks" >&2; exit 2 ;;
  *) exec "$PY" -m convae "$@" ;;
esac
