"""Serving the browser app: ``serve(port, host)`` runs solara-server on ``viz/app.py``.

The app binds 127.0.0.1 unless told otherwise: it runs models for whoever connects and reads the
results folders of whoever starts it, so listening on other interfaces is a choice that gets a
warning. The front-end files come from Solara's local CDN cache (``tools/fetch_solara_assets.py``
fills it from npm), so the page works with no internet.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
LOOPBACK = "127.0.0.1"
# solara-server settings for this app: no telemetry calls home (they would stall offline), no
# banner, and the production mode (no hot reload, no dev tools).
ENVIRONMENT = {
    "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
    "SOLARA_THEME_SHOW_BANNER": "False",
    "SOLARA_THEME_TITLE": "Rare-earth supply chain",
    # solara warns on every page load over plain http that is not "localhost"; nothing to fix.
    "PYTHONWARNINGS": "ignore:Cookies with samesite=none:UserWarning",
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def command(port: int, host: str = LOOPBACK) -> list[str]:
    """The solara-server command line for the app."""
    return [
        sys.executable,
        "-m",
        "solara",
        "run",
        str(APP),
        "--host",
        host,
        "--port",
        str(port),
        "--production",
        "--no-open",
    ]


def environment() -> dict[str, str]:
    """The process environment for the server, with the app's solara settings added."""
    env = dict(os.environ)
    for key, value in ENVIRONMENT.items():
        env.setdefault(key, value)
    # The app imports ``viz`` and ``sim`` from the source tree it was started from.
    root = str(APP.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def missing_assets() -> list[str]:
    """Front-end packages missing from Solara's local CDN cache (empty when all are there)."""
    tools = APP.parent.parent / "tools" / "fetch_solara_assets.py"
    if not tools.is_file():
        return []
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_solara_assets", tools)
    if spec is None or spec.loader is None:
        return []
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cache = module.cache_dir()
    return [
        f"{package}@{version}"
        for package, version in module.wanted_versions().items()
        if not (cache / f"{package}@{version}" / "package.json").is_file()
    ]


def serve(port: int, host: str = LOOPBACK) -> int:
    """Serve the app on ``host:port`` until interrupted; return an exit status.

    Binds 127.0.0.1 by default; another host gets a warning on stderr, since anyone who can reach
    it can run models on this machine and read its results folders.
    """
    if not 0 < port < 65536:
        print(f"error: --port {port}: must be from 1 to 65535", file=sys.stderr)
        return 2
    if not is_loopback(host):
        print(
            f"warning: serving on {host}, not only on this machine: anyone who can reach "
            f"{host}:{port} can run models here and read the results folders. Use "
            f"--host {LOOPBACK} to keep it local.",
            file=sys.stderr,
        )
    missing = missing_assets()
    if missing:
        print(
            f"warning: front-end files missing from Solara's cache ({', '.join(missing)}); "
            "without internet the page stays blank. Fetch them with "
            "`python tools/fetch_solara_assets.py` (needs npm).",
            file=sys.stderr,
        )
    shown = f"[{host}]" if ":" in host else host
    print(f"resim viz: http://{shown}:{port}  (Ctrl-C stops it)", flush=True)
    server = subprocess.Popen(command(port, host), env=environment())
    # Pass a termination on to the server, so stopping `resim viz` never leaves it running.
    forward = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate()) if forward else None
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        return 0
    finally:
        if forward:
            signal.signal(signal.SIGTERM, previous)
