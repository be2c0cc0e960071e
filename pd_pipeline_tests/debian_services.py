"""Servers from Debian packages for the tests (Redis, nginx): installed with apt-get when missing
and allowed (root on Debian, as on the CI machine), else the test is skipped saying why; each
test starts its own on a free loopback port, never a system service."""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pd_pipeline_tests.services import free_port, process_group


def debian_binary(name: str, package: str) -> str:
    """The path of `name`, installing Debian's `package` first if it is missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"{name} is not installed (apt-get install {package}) and cannot be here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    assert found, f"apt-get installed {package} but no {name} is on the PATH"
    return found


def wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A Redis of the test's own on loopback, keeping nothing on disk; yields its URL."""
    binary = debian_binary("redis-server", "redis-server")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--dir", str(folder)]  # fmt: skip
    with process_group(args, folder / "redis.log"):
        wait_for_port(port, "redis-server")
        yield f"redis://127.0.0.1:{port}"
