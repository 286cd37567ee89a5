#!/usr/bin/env bash
# Installs what the browser tests (pytest -m browser) use: Debian's headless Chromium and its
# WebDriver (apt `chromium chromium-driver`) and the `selenium` Python package (PyPI).
# No browser download of selenium's own (Selenium Manager) is
# needed: the tests point selenium at /usr/bin/chromium and /usr/bin/chromedriver.
# Idempotent and fast once done: each step is skipped when its result is already there.
# Needs root (apt). Prints the Chromium version.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

log() { echo "== browser-setup: $*" >&2; }

install_packages() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "browser-setup.sh: run as root to install chromium (apt)" >&2
    exit 1
  fi
  log "installing chromium, chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
}

install_selenium() {
  if "$PYTHON" -c 'import selenium' 2>/dev/null; then
    return
  fi
  log "installing selenium"
  "$PYTHON" -m pip install -q 'selenium>=4.10'
}

install_packages
install_selenium
# (Debian's launcher script prints a harmless shell warning on stderr.)
/usr/bin/chromium --version 2>/dev/null
