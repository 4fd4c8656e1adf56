"""Shared test policy.

A test that needs a system tool (Graphviz ``dot``, ``chromium``) calls ``require_tool(name)``
(or uses the ``require_tool`` fixture). On a developer machine a missing tool skips the test
with the install command; under CI (``CI`` set to true/1/yes) it fails instead, so that a CI
that lost a tool can never pass by skipping.
"""

import hashlib
import os
import shutil
from pathlib import Path

import pytest

# Debian package that provides each tool; `make system-deps` installs them.
DEBIAN_PACKAGE = {"dot": "graphviz", "chromium": "chromium"}


def digest(*parts):
    """A SHA-256 over ``parts`` (bytes or text), each ended by a NUL: a cache key for a venv."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()


def in_ci():
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_tool(name):
    """Path of system tool ``name``; skip the test if missing (fail under CI)."""
    path = shutil.which(name)
    if path:
        return path
    package = DEBIAN_PACKAGE.get(name, name)
    message = (f"system tool `{name}` not found: run `make system-deps` "
               f"(or `sudo apt-get install -y {package}`)")
    if in_ci():
        pytest.fail(f"{message}. CI=true, so a missing tool fails instead of skipping.",
                    pytrace=False)
    pytest.skip(message)


@pytest.fixture(name="require_tool")
def require_tool_fixture():
    """The ``require_tool`` function, for tests that prefer a fixture."""
    return require_tool


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes minutes the first time (builds a venv); still run by make test")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the worker's session, shared by every browser test file
    (Playwright's sync API allows one running instance per process)."""
    require_tool("chromium")
    import browser_support as bs

    if not Path(bs.CHROMIUM).exists():
        require_tool(bs.CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = bs.launch_chromium(playwright)
        yield chromium
        chromium.close()
