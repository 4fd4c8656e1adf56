#!/usr/bin/env bash
# Make sure the system tools the notebooks and tests need are there (Debian packages):
#   dot      (graphviz)  draws the autograd graphs
#   chromium (chromium)  headless browser for the browser tests
#   npm      (npm)       fetches reveal.js once for the offline slide decks
#   ensurepip for python3 (python3-venv), so `python3 -m venv` works on a bare Debian
# As root, missing ones are installed (apt-get update once, then one apt-get install).
# Otherwise the one command to run is printed and we carry on: the notebooks still run
# (graphs fall back to a text outline), and the tests that need a tool skip (fail under CI).
set -euo pipefail

PYTHON=${PYTHON:-python3}
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)  # fetches reveal.js for `make slides`
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "system-deps: missing ${missing[*]}; install with:"
    echo "    sudo apt-get install -y ${missing[*]}"
    echo "system-deps: continuing without them (graphs show as text; browser tests skip)."
fi
