#!/usr/bin/env bash
# Make sure the system tools are there. Two sets:
#   learner (make lab, make app):  dot (Graphviz) draws the autograd graphs;
#                                  ensurepip for python3 (python3-venv on Debian), so
#                                  `python3 -m venv` works.
#   dev (make test, make slides, make notebooks, make bench): the learner set, plus
#                                  chromium  headless browser for the browser tests
#                                  npm       fetches reveal.js once for the offline slide decks
# Usage: tools/system_deps.sh [learner|dev]   (default: dev, what CI needs)
#
# Debian/Ubuntu as root: missing packages are installed (apt-get update once, one install).
# macOS with Homebrew: `brew install` (Homebrew refuses root and needs no sudo).
# Otherwise the one command to run is printed and we carry on: the notebooks still run
# (graphs fall back to a text outline), and the tests that need a tool skip (fail under CI).
set -euo pipefail

PROFILE=${1:-dev}
case "$PROFILE" in
    learner|dev) ;;
    *) echo "system_deps.sh: unknown set '$PROFILE'; valid sets: learner, dev" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
missing=()   # Debian package names
brew=()      # Homebrew formula/cask names
if ! command -v dot >/dev/null 2>&1; then missing+=(graphviz); brew+=(graphviz); fi
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ "$PROFILE" = dev ]; then
    if ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); brew+=(--cask chromium); fi
    if ! command -v npm >/dev/null 2>&1; then missing+=(npm); brew+=(node); fi
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(uname -s)" = Darwin ]; then
    if [ ${#brew[@]} -eq 0 ]; then
        echo "system-deps: Python lacks venv support; install Python 3.10+ from python.org or Homebrew."
    elif command -v brew >/dev/null 2>&1; then
        echo "system-deps: brew install ${brew[*]}"
        brew install "${brew[@]}"
    else
        echo "system-deps: missing ${brew[*]}; install Homebrew (https://brew.sh), then:"
        echo "    brew install ${brew[*]}"
    fi
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "system-deps: missing ${missing[*]}; install with:"
    echo "    sudo apt-get install -y ${missing[*]}"
    echo "system-deps: continuing without them (graphs show as text; browser tests skip)."
fi
