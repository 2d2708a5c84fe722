#!/usr/bin/env bash
# Idempotent set-up for the end-to-end tests (tests/test_server_e2e.py, tests/test_browser.py).
#   tests/e2e_setup.sh VENV_PYTHON [server|browser|all]
# server:  `requests` in that venv (ComfyUI's server imports it; its requirements.txt lacks it)
# browser: Debian's `chromium` (apt-get, needs root) and `playwright` from PyPI in that venv.
#          Playwright drives the system browser (/usr/bin/chromium): `playwright install` (a
#          browser download) is never run.
# Exits 0 when everything asked for is there; otherwise prints why on stderr and exits 1.
set -uo pipefail
PY="${1:?usage: e2e_setup.sh VENV_PYTHON [server|browser|all]}"
WHAT="${2:-all}"
log() { printf '[e2e_setup] %s\n' "$*" >&2; }
ok=0

have_mod() { "$PY" -c "import $1" >/dev/null 2>&1; }
pip_install() {
  # (this machine's pip config may name local indexes that are absent: hide that noise)
  "$PY" -m pip install -q --disable-pip-version-check "$@" \
    2> >(grep -v 'is ignored: it is neither' >&2)
}

if [ "$WHAT" = server ] || [ "$WHAT" = all ] || [ "$WHAT" = browser ]; then
  if ! have_mod requests; then
    log "installing requests into $(dirname "$(dirname "$PY")")"
    pip_install requests || { log "could not install requests"; ok=1; }
  fi
fi

if [ "$WHAT" = browser ] || [ "$WHAT" = all ]; then
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing Debian's chromium (apt-get)"
      export DEBIAN_FRONTEND=noninteractive
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium \
          fonts-dejavu-core; } >/dev/null 2>&1 \
        || { log "apt-get install chromium failed"; ok=1; }
    else
      log "/usr/bin/chromium is missing and apt-get cannot run here (not root?)"; ok=1
    fi
  fi
  # optional: a small CJK font, so that Wan's Chinese negative prompt is legible in screenshots
  if [ "$(id -u)" = 0 ] && [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] \
      && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      fonts-wqy-microhei >/dev/null 2>&1 || log "(optional fonts-wqy-microhei not installed)"
  fi
  if ! have_mod playwright.sync_api; then
    log "installing playwright (the Python driver only; no browser download)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip_install playwright \
      || { log "could not install playwright"; ok=1; }
  fi
fi
exit $ok
