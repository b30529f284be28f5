"""Put the front-end files Solara would fetch from a CDN into its local cache, from npm.

solara-server loads its JavaScript and CSS from a public CDN at run time and caches them under
``<venv>/share/solara/cdn/<package>@<version>/``. Without internet (a firewall, CI) the page stays
blank. The same files are npm packages, so this script ``npm pack``s each one the browser app asks
for and unpacks it into that cache folder. The versions are read from the installed solara's own
templates and components, so a solara upgrade picks the matching versions by itself.

Idempotent and quick when already done: a package whose folder holds its ``package.json`` is
skipped. Usage: ``.venv/bin/python tools/fetch_solara_assets.py`` (``make test`` runs it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Package name -> (file under solara's package that names its version, regex with the version).
# requirejs, font-awesome and the Vuetify 2 app bundle are loaded by every page (ipyvuetify < 3);
# echarts by the charts the app draws (solara.FigureEcharts).
SOURCES: dict[str, tuple[str, str]] = {
    "@widgetti/solara-vuetify-app": (
        "server/templates/solara.html.j2",
        r"@widgetti/solara-vuetify-app@([0-9][^/]*)/",
    ),
    "requirejs": ("components/echarts.vue", r"requirejs@([0-9][^/]*)/"),
    "font-awesome": ("server/settings.py", r"font-awesome@([0-9][^/]*)/"),
    "echarts": ("components/echarts.vue", r'const version = "([0-9][^"]*)"'),
}
FALLBACK = {
    "@widgetti/solara-vuetify-app": "10.1.1",
    "requirejs": "2.3.6",
    "font-awesome": "4.5.0",
    "echarts": "5.4.0",
}


def cache_dir() -> Path:
    """Solara's CDN proxy cache folder for this Python environment (as solara.server.settings)."""
    # Importing solara takes a second; the setting's rule is simple enough to repeat.
    configured = os.environ.get("SOLARA_ASSETS_PROXY_CACHE_DIR")
    return Path(configured) if configured else Path(sys.prefix) / "share" / "solara" / "cdn"


def wanted_versions() -> dict[str, str]:
    """Each package's version, as the installed solara asks for it."""
    spec = importlib.util.find_spec("solara")
    if spec is None or spec.origin is None:
        msg = "solara is not installed in this Python environment"
        raise RuntimeError(msg)
    root = Path(spec.origin).parent
    versions = {}
    for package, (relative, pattern) in SOURCES.items():
        path = root / relative
        found = re.search(pattern, path.read_text(encoding="utf-8")) if path.is_file() else None
        versions[package] = found.group(1) if found else FALLBACK[package]
    return versions


def unpack(tarball: Path, target: Path) -> None:
    """Unpack an npm tarball (files under ``package/``) into ``target``, atomically."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        with tarfile.open(tarball) as tar:
            tar.extractall(staging, filter="data")
        inner = staging / "package"
        if not (inner / "package.json").is_file():
            msg = f"{tarball.name}: no package/package.json inside; not an npm package tarball"
            raise RuntimeError(msg)
        if target.exists():
            shutil.rmtree(target)
        inner.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> int:
    """Fetch what is missing; print what was done."""
    cache = cache_dir()
    versions = wanted_versions()
    missing = {
        package: version
        for package, version in versions.items()
        if not (cache / f"{package}@{version}" / "package.json").is_file()
    }
    if not missing:
        print(f"solara front-end assets present in {cache}")
        return 0
    npm = shutil.which("npm")
    if npm is None:
        print(
            "npm not found: install Node.js (apt-get install -y npm) to fetch the front-end "
            f"assets {', '.join(missing)}; without them the page is blank offline",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        specs = [f"{p}@{v}" for p, v in missing.items()]
        print(f"npm pack {' '.join(specs)}")
        done = subprocess.run(
            [npm, "pack", "--silent", "--pack-destination", tmp, *specs],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        for (package, version), name in zip(missing.items(), names, strict=True):
            target = cache / f"{package}@{version}"
            target.parent.mkdir(parents=True, exist_ok=True)
            unpack(Path(tmp) / name, target)
            print(f"  {package}@{version} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
