#!/bin/sh
# The one set-up command: promptreel with its development tools, and a Chromium for the page
# test. Playwright drives the system's Chromium; `playwright install` is not needed (and its
# browser download is not possible everywhere).
set -eu

cd "$(dirname "$0")"

pip install -e ".[dev]" torch==2.13.0

# root needs no sudo; a user without sudo gets apt-get's own permission error
as_root() {
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        "$@"
    fi
}

if [ -n "${PROMPTREEL_CHROMIUM:-}" ]; then
    echo "setup: using PROMPTREEL_CHROMIUM=$PROMPTREEL_CHROMIUM for the page test"
elif command -v chromium >/dev/null 2>&1; then
    echo "setup: chromium is installed ($(command -v chromium))"
elif command -v apt-get >/dev/null 2>&1; then
    # a fresh system's package lists may be missing or stale: update only if the install fails
    as_root apt-get install -y chromium || { as_root apt-get update && as_root apt-get install -y chromium; }
else
    echo "setup: no apt-get here; install Chromium, or set PROMPTREEL_CHROMIUM=/path/to/chrome, for tests/test_page.py"
fi

echo "setup: done; run the tests with: pytest"
