"""A private PostgreSQL cluster for tests: initdb and pg_ctl in a temporary directory.

The server listens only on a unix socket in that directory. As root, the cluster runs as the
``postgres`` user (Debian's package creates it; PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

INSTALL = (
    "PostgreSQL's server programs (initdb, pg_ctl) were not found on PATH or in "
    "/usr/lib/postgresql/*/bin. Install them with `make postgres` (Debian/Ubuntu: "
    "apt-get install -y postgresql), then run the tests again."
)


def server_bin() -> Path:
    """The directory holding initdb and pg_ctl; AssertionError (how to install) if none."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise AssertionError(INSTALL)


def _as_user() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid}


@contextlib.contextmanager
def cluster() -> Iterator[tuple[str, Path]]:
    """Start a cluster; yield (socket directory, server log). Stopped and removed on exit."""
    bin_dir = server_bin()
    user = _as_user()
    with tempfile.TemporaryDirectory(prefix="pg-") as tmp:
        root = Path(tmp)
        if user:
            os.chown(root, user["user"], user["group"])  # type: ignore[arg-type]
        data, log = root / "data", root / "server.log"

        def run(*args: str) -> None:
            subprocess.run(args, check=True, capture_output=True, **user)  # type: ignore[call-overload]

        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-N")
        options = f"-k {root} -c listen_addresses='' -F -c log_connections=on"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        try:
            yield str(root), log
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
