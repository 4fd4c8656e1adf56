"""What learners run on: system packages per set, idle-kernel culling, the JupyterHub link."""

import html
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import browser_support as bs

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_DEPS = ROOT / "tools" / "system_deps.sh"
CONFIG_DIR = ROOT / "binder" / "jupyter"


# --- tools/system_deps.sh: learners get Graphviz only, tests add Chromium and npm ---------

def fake_path(tmp_path, *, system="Linux", uid=1000, tools=()):
    """A PATH with python3, a fake `uname`/`id`, and only the given tools (as no-op scripts)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    scripts = {"uname": f"echo {system}", "id": f"echo {uid}"}
    scripts.update({tool: "true" for tool in tools})
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return str(bin_dir)


def system_deps(path, *args):
    return subprocess.run(["/bin/bash", str(SYSTEM_DEPS), *args], capture_output=True, text=True,
                          env={"PATH": path, "PYTHON": "python3"}, timeout=60)


def test_learner_set_needs_only_graphviz(tmp_path):
    result = system_deps(fake_path(tmp_path), "learner")
    assert result.returncode == 0, result.stderr
    assert "missing graphviz;" in result.stdout
    assert "chromium" not in result.stdout and "npm" not in result.stdout


def test_dev_set_adds_the_browser_and_npm(tmp_path):
    result = system_deps(fake_path(tmp_path), "dev")
    assert "missing graphviz chromium npm;" in result.stdout, result.stdout


def test_nothing_missing_prints_nothing(tmp_path):
    result = system_deps(fake_path(tmp_path, tools=("dot", "chromium", "npm")), "dev")
    assert result.returncode == 0 and result.stdout == ""


def test_macos_uses_homebrew(tmp_path):
    result = system_deps(fake_path(tmp_path, system="Darwin"), "learner")
    assert "brew install graphviz" in result.stdout and "apt-get" not in result.stdout


def test_unknown_set_names_the_valid_ones(tmp_path):
    result = system_deps(fake_path(tmp_path), "everything")
    assert result.returncode == 2
    assert "unknown set 'everything'" in result.stderr and "learner, dev" in result.stderr


def test_make_lab_installs_only_the_learner_set():
    dry_run = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60).stdout
    assert "tools/system_deps.sh learner" in dry_run
    assert "tools/system_deps.sh dev" not in dry_run


# --- idle kernels are culled on Binder and under `make lab` (one config folder) -------------

def shown_config(command):
    """`jupyter server --show-config` as run through ``command`` (a wrapper)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env["JUPYTER_CONFIG_DIR"] = str(ROOT / "build" / "no-user-config")
    result = subprocess.run([*command, sys.executable, "-m", "jupyter", "server",
                             "--show-config", *bs.root_flag()],
                            capture_output=True, text=True, env=env, timeout=120)
    return result.stdout


@pytest.mark.parametrize("how", ["binder/start", "make lab"])
def test_idle_kernels_are_culled_after_15_minutes(how):
    if how == "binder/start":
        # repo2docker runs binder/start before the server: it must set the config path.
        command = ["/bin/bash", str(ROOT / "binder" / "start")]
    else:
        dry_run = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=60).stdout
        match = re.search(r'JUPYTER_CONFIG_PATH="([^"$]+)', dry_run)
        assert match, "make lab sets JUPYTER_CONFIG_PATH"
        assert Path(match.group(1)) == CONFIG_DIR
        command = ["env", f"JUPYTER_CONFIG_PATH={match.group(1)}"]
    shown = shown_config(command)
    assert str(CONFIG_DIR / "jupyter_server_config.json") in shown
    assert ".cull_idle_timeout = 900" in shown and ".cull_interval = 60" in shown
    # Kernels whose notebook tab is still open count as idle too: that is the memory problem.
    assert ".cull_connected = True" in shown


def test_kernel_websockets_turn_nagle_off():
    """Binder and `make lab` serve kernel messages without Nagle's wait for a delayed ACK."""
    shown = shown_config(["/bin/bash", str(ROOT / "binder" / "start")])
    assert str(CONFIG_DIR / "jupyter_server_config.py") in shown
    assert re.search(r"\.kernel_websocket_connection_class = .*NoDelayChannels", shown), shown


def test_no_delay_channels_set_nodelay_before_connecting(monkeypatch):
    from jupyter_server.services.kernels.connection.channels import (
        ZMQChannelsWebsocketConnection,
    )
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("jupyter_server_config.py", path=str(CONFIG_DIR)).load_config()
    channels = config.ServerApp.kernel_websocket_connection_class
    assert issubclass(channels, ZMQChannelsWebsocketConnection)
    calls = []

    class Handler:
        def set_nodelay(self, value):
            calls.append(("set_nodelay", value))

    monkeypatch.setattr(ZMQChannelsWebsocketConnection, "connect",
                        lambda self: calls.append("connect") or "nudged")
    connection = channels.__new__(channels)
    connection._trait_values["websocket_handler"] = Handler()  # no kernel needed
    assert connection.connect() == "nudged"
    assert calls == [("set_nodelay", True), "connect"]


# --- classrooms: the README's nbgitpuller link works against a real Jupyter server ----------

def readme_nbgitpuller_link():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://[^\s)>\"]+/hub/user-redirect/git-pull\?[^\s)>\"]+", readme)
    assert links, "the README gives teachers an nbgitpuller link"
    return urllib.parse.urlsplit(html.unescape(links[0]))


def test_nbgitpuller_link_pulls_the_series_and_opens_notebook_00(tmp_path):
    pytest.importorskip("nbgitpuller")
    link = readme_nbgitpuller_link()
    query = dict(urllib.parse.parse_qsl(link.query))
    assert query["repo"].startswith("https://github.com/") and query["branch"] == "main"
    target = query["repo"].rstrip("/").split("/")[-1]
    assert query["urlpath"] == f"lab/tree/{target}/notebooks/00_start_here.ipynb"

    # The same query against a local server, pulling this clone instead of GitHub.
    home = tmp_path
    (home / "root").mkdir()
    port = bs.free_port()
    server = bs.Server([sys.executable, "-m", "jupyter", "server", "--no-browser",
                        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
                        "--ServerApp.token=", "--ServerApp.password=",
                        f"--ServerApp.root_dir={home / 'root'}", *bs.root_flag()],
                       port, home, "server.log", "/api/status")
    try:
        local = dict(query, repo=str(ROOT))
        with urllib.request.urlopen(f"{server.url}/git-pull?{urllib.parse.urlencode(local)}",
                                    timeout=60) as page:
            assert page.status == 200
        # The page's script streams the pull from /git-pull/api; read that stream to its end.
        api = {k: local[k] for k in ("repo", "branch")} | {"targetpath": target}
        with urllib.request.urlopen(f"{server.url}/git-pull/api?{urllib.parse.urlencode(api)}",
                                    timeout=300) as stream:
            events = stream.read().decode()
        assert '"phase": "finished"' in events, events[-2000:]
    finally:
        server.stop()
    assert (home / "root" / target / "notebooks" / "00_start_here.ipynb").exists()
