#!/usr/bin/env bash
# Debian's chromium for the Playwright browser tests (no browser download: Playwright
# drives /usr/bin/chromium through executable_path). Needs root and apt; otherwise the
# browser tests skip and say so.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  echo "Installed Debian chromium."
else
  echo "chromium is missing and cannot be installed here (need root + apt): browser tests will skip." >&2
fi
