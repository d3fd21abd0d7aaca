# Sourced by `course.sh test`: the Debian packages the test suite needs (tests/system.py says what
# each is for). As root they are installed with apt-get; otherwise the run stops and prints the one
# command to run, unless CONVAE_SKIP_SYSTEM_TESTS=1 says to skip the tests that need them.
SYSTEM_PACKAGES=(dataset-fashion-mnist bubblewrap postgresql chromium)
if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "${CONVAE_SKIP_SYSTEM_TESTS:-}" = 1 ]; then
      echo "course.sh: ${missing[*]} not installed: their tests will be skipped (CONVAE_SKIP_SYSTEM_TESTS=1)" >&2
    elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "course.sh: installing the system packages the tests need: ${missing[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "course.sh: the test suite needs these system packages: ${missing[*]}. Install them with" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2
      echo "and run bash course.sh test again; or skip the tests that need them, knowingly, with" >&2
      echo "  CONVAE_SKIP_SYSTEM_TESTS=1 bash course.sh test" >&2
      exit 1
    fi
  fi
fi
