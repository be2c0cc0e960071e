"""Finding a Chromium for Playwright: PD_CHROMIUM_PATH, else the system's, else Playwright's own."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

SYSTEM_CHROMIUMS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
HOW_TO_FIX = (
    "set PD_CHROMIUM_PATH to a Chromium binary, run `playwright install chromium`, "
    "or on Debian/Ubuntu `apt-get install -y chromium`"
)


class ChromiumNotFound(RuntimeError):
    pass


def playwright_chromium() -> str | None:
    """The Chromium `playwright install chromium` put in place, if it did."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        path = p.chromium.executable_path
    return path if Path(path).is_file() else None


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium to drive; a one-line error saying how to get one when there is none."""
    explicit = explicit or os.environ.get("PD_CHROMIUM_PATH") or None
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ChromiumNotFound(f"PD_CHROMIUM_PATH={explicit} is not an executable file")
        return explicit
    for path in SYSTEM_CHROMIUMS:
        if os.access(path, os.X_OK):
            return path
    found = playwright_chromium()
    if found:
        return found
    raise ChromiumNotFound(f"No Chromium found: {HOW_TO_FIX}.")


def ensure_chromium() -> str:
    """find_chromium, installing Debian's package first when we can (Debian, root, none found)."""
    try:
        return find_chromium()
    except ChromiumNotFound:
        if not (shutil.which("apt-get") and os.geteuid() == 0):
            raise
    # stdout carries only the path (make keeps it in var/.chromium); apt talks on stderr.
    print("No Chromium found; installing Debian's chromium package ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Waits for another apt (an unattended upgrade, a second setup) instead of failing at once.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    for command in ([*apt, "update", "-qq"], [*apt, "install", "-y", "-qq", "chromium"]):
        subprocess.run(command, check=True, env=env, stdout=sys.stderr)
    return find_chromium()
