"""Debian's chromium driven by Playwright for Python, for the admin page's tests.

Playwright's own browser download cannot work on these machines (only PyPI, Debian and npm are
reachable), so the tests drive the distribution's chromium. When it is missing, the set-up
installs it with apt as root (as deploy/local/services.sh does for rabbitmq-server); a user who
is not root gets one line saying what to install, and the browser tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path(os.environ.get("QH_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".local" / "artifacts" / "page"


def _apt_install(package: str) -> None:
    log = ROOT / ".local" / "apt-chromium.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    with log.open("ab") as out:
        policy = subprocess.run(
            ["apt-cache", "policy", package], capture_output=True, text=True, check=False
        )
        if "Candidate: (none)" in policy.stdout or "Candidate:" not in policy.stdout:
            subprocess.run([*apt, "update"], stdout=out, stderr=out, env=env, check=True)
        subprocess.run(
            [*apt, "install", "-y", "-q", package], stdout=out, stderr=out, env=env, check=True
        )


def chromium_or_reason() -> str | None:
    """None when the browser is there (installing it if we may); else what to install."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        try:
            _apt_install("chromium")
        except subprocess.CalledProcessError:
            return "apt-get install chromium failed (see .local/apt-chromium.log)"
        if CHROMIUM.exists():
            return None
    return f"no browser at {CHROMIUM}: install it with `sudo apt-get install chromium`"
