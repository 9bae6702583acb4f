"""A throwaway Postgres server for tests: Debian's binaries, a Unix socket, no TCP port.

Installed from Debian's package when absent (``apt-get install postgresql``); the test is
skipped, with the reason, only where that cannot be done. The server listens on a socket in
the test's temporary folder (``listen_addresses = ''``), so nothing else can reach it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PORT = 54329


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _install() -> str | None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "Postgres binaries (initdb, pg_ctl) are absent and this user cannot apt-get install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            return f"apt-get could not install postgresql: {proc.stderr.strip()[-300:]}"
    return None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a ``postgresql://`` URL of a fresh server; stop and remove it afterwards.

    Raises ``RuntimeError`` with the reason when no server can be had. Its folder is a new
    one under the system temp dir, not pytest's (which the postgres user cannot enter).
    """
    if not (_bin("initdb") and _bin("pg_ctl")):
        reason = _install()
        if reason or not (_bin("initdb") and _bin("pg_ctl")):
            raise RuntimeError(reason or "postgresql installed but initdb/pg_ctl not found")
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    # Postgres refuses to run as root: as root, run it as the package's postgres user.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="chargeline-pg-"))
    if prefix:
        shutil.chown(base, "postgres")
    data = base / "data"
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "chargeline", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    opts = f"-k {base} -c listen_addresses='' -p {PORT} -c fsync=off"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", opts, "-w", "-l", str(base / "log"), "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://chargeline@/postgres?host={base}&port={PORT}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
