"""A PostgreSQL cluster of a test's own: its own data directory and port, stopped at will.

Fault tests stop and restart it, so it is never the shared server the rest of the suite
uses. The server binaries come from the distribution's packages (``initdb`` and
``pg_ctl`` under ``/usr/lib/postgresql/<version>/bin``). PostgreSQL refuses to run as
root, so under root they run as the ``postgres`` system user, in a directory it owns.
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.live import free_port

SERVER_USER = "postgres"


def server_binaries():
    """Return the newest installed PostgreSQL bin directory, or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not found:
        on_path = shutil.which("pg_ctl")
        return Path(on_path).parent if on_path else None
    newest = max(found, key=lambda path: int(Path(path).parts[-3].split(".")[0]))
    return Path(newest).parent


def missing_reason():
    """Say why no throwaway cluster can be made here, or return None when one can."""
    if server_binaries() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as"
    return None


class ThrowawayCluster:
    """initdb, start, stop and restart one cluster listening on 127.0.0.1 only."""

    def __init__(self):
        self.bin = server_binaries()
        self.port = free_port()
        # Under /tmp rather than pytest's directory: the server user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="picloud-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args):
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def create(self):
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        return self

    def start(self):
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def is_running(self):
        return (self.data / "postmaster.pid").exists()

    def destroy(self):
        if self.is_running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
