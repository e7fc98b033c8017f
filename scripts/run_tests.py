#!/usr/bin/env python3
"""Run the crmcore test suite, on memory, SQLite and PostgreSQL.

Usage (from anywhere)::

    pip install -e '.[test]' && python scripts/run_tests.py [pytest arguments...]

Every argument is handed to pytest unchanged (``-x -q``, ``-k lifecycle``, a test path...); with no path,
pytest runs ``tests/`` (``testpaths`` in pyproject.toml).

Which PostgreSQL the PostgreSQL-parametrised tests use, in this order:

1. ``$CRMCORE_TEST_POSTGRES_URL`` if it is set (``postgresql://user[:password]@host:port/dbname``, no query:
   each test creates and drops its own schema there);
2. otherwise a throwaway server: if the PostgreSQL server programs (``initdb``, ``pg_ctl``) are installed,
   a new cluster is created in a temporary directory, listening on 127.0.0.1 only, on a free port, with
   trust authentication; it is stopped and deleted when the tests end, also on Ctrl-C;
3. otherwise none: a banner says so and those tests are skipped. With ``CRMCORE_REQUIRE_POSTGRES=1`` this
   is an error instead (exit status 3).

The exit status is pytest's. Only the standard library is used here.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
URL_VAR = "CRMCORE_TEST_POSTGRES_URL"
REQUIRE_VAR = "CRMCORE_REQUIRE_POSTGRES"
#: Exit status when PostgreSQL is required but none could be had.
EXIT_NO_POSTGRES = 3
#: Where distributions put the server programs when they are not on PATH (newest version first).
BIN_DIR_PATTERNS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/usr/local/pgsql/bin",  # built from source
    "/opt/homebrew/opt/postgresql@*/bin",  # macOS, Homebrew
    "/usr/local/opt/postgresql@*/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)
#: Server settings of the throwaway cluster: durability is not wanted for a test database.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}


class NoPostgres(Exception):
    """No PostgreSQL server could be had; the message says why."""


def log(message: str = "") -> None:
    print(f"[run_tests] {message}" if message else "", flush=True)


def banner(lines: Sequence[str]) -> None:
    width = max(60, *(len(line) for line in lines)) + 4
    print("\n" + "!" * width, flush=True)
    for line in lines:
        print(f"!! {line.ljust(width - 6)} !!")
    print("!" * width + "\n", flush=True)


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "y", "on")


def redact(url: str) -> str:
    """The URL with its password hidden, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------------- finding the server programs


def _version_key(directory: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", directory)) or (0,)


def find_server_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, then the usual install places)."""
    initdb = shutil.which("initdb")
    if initdb:
        directory = Path(os.path.realpath(initdb)).parent
        if (directory / "pg_ctl").exists():
            return directory
        if shutil.which("pg_ctl"):
            return Path(initdb).parent
    candidates: list[str] = []
    for pattern in BIN_DIR_PATTERNS:
        candidates += sorted(glob.glob(pattern), key=_version_key, reverse=True)
    for directory in candidates:
        if os.access(os.path.join(directory, "initdb"), os.X_OK) and os.access(
            os.path.join(directory, "pg_ctl"), os.X_OK
        ):
            return Path(directory)
    raise NoPostgres(
        "the PostgreSQL server programs (initdb, pg_ctl) are not installed "
        "(neither on PATH nor in " + ", ".join(BIN_DIR_PATTERNS[:3]) + ")"
    )


# ---------------------------------------------------------------------- the throwaway server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class ThrowawayServer:
    """A PostgreSQL cluster in a temporary directory, for the length of one test run.

    initdb refuses to run as root: as root, the directory is given to an unprivileged user (``postgres``
    if it exists) and the server programs run as that user.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.run_as = self._unprivileged_user() if os.geteuid() == 0 else None
        self.base: Path | None = None
        self.port: int | None = None
        self.started = False

    @staticmethod
    def _unprivileged_user() -> pwd.struct_passwd:
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise NoPostgres("running as root and there is no 'postgres' (or 'nobody') user to run initdb as")

    @property
    def data_dir(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        assert self.base is not None
        return self.base / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, program: str, *args: str) -> list[str]:
        argv = [str(self.bin_dir / program), *args]
        if self.run_as is None:
            return argv
        runuser = shutil.which("runuser") or next(
            (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None
        )
        if runuser:
            return [runuser, "-u", self.run_as.pw_name, "--", *argv]
        return ["su", "-s", "/bin/sh", self.run_as.pw_name, "-c", shlex.join(argv)]

    def _run(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(program, *args),
            cwd=self.base,  # a directory the server's user can enter
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, not the server: we stop it
        )

    def version(self) -> str:
        try:
            out = subprocess.run(
                [str(self.bin_dir / "pg_ctl"), "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return "PostgreSQL (unknown version)"
        return out.replace("pg_ctl (PostgreSQL)", "PostgreSQL").strip() or "PostgreSQL (unknown version)"

    def start(self) -> None:
        # As root, the temporary directory must be reachable by the server's user: /tmp always is.
        parent = "/tmp" if self.run_as is not None and os.path.isdir("/tmp") else None
        self.base = Path(tempfile.mkdtemp(prefix="crmcore-test-pg-", dir=parent))
        if self.run_as is not None:
            os.chown(self.base, self.run_as.pw_uid, self.run_as.pw_gid)
        result = self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
            "--no-locale", "--no-sync",
        )
        if result.returncode != 0:
            raise NoPostgres(f"initdb failed (exit {result.returncode}):\n{result.stdout.strip()}")
        last_error = ""
        for _attempt in range(5):  # another program may take the free port before the server does
            self.port = free_port()
            self._configure()
            result = self._run(
                "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start"
            )
            if result.returncode == 0 and self._wait_ready():
                self.started = True
                return
            last_error = f"pg_ctl start failed (exit {result.returncode}):\n{result.stdout.strip()}"
            last_error += "\n" + self._log_tail()
            self._stop_quietly()
        raise NoPostgres(last_error)

    def _configure(self) -> None:
        assert self.base is not None
        settings = {
            **SERVER_SETTINGS,
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
        }
        conf = self.data_dir / "postgresql.auto.conf"
        conf.write_text(
            "# Written by scripts/run_tests.py for a throwaway test server.\n"
            + "".join(f"{k} = {v}\n" for k, v in settings.items())
        )
        if self.run_as is not None:
            os.chown(conf, self.run_as.pw_uid, self.run_as.pw_gid)

    def _wait_ready(self, timeout: float = 30) -> bool:
        assert self.port is not None
        pg_isready = self.bin_dir / "pg_isready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pg_isready.exists():
                ready = subprocess.run(
                    [str(pg_isready), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                     "-d", "postgres"],
                    stdin=subprocess.DEVNULL, capture_output=True, check=False,
                ).returncode == 0
            else:
                ready = accepts_connections(self.port)
            if ready:
                return True
            time.sleep(0.2)
        return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "server log:\n" + "\n".join(text.splitlines()[-lines:])

    def _stop_quietly(self) -> None:
        if self.base is None or not (self.data_dir / "postmaster.pid").exists():
            return
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30", "stop",
                      timeout=60)
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():  # pg_ctl could not stop it: end the postmaster we started ourselves
            with contextlib.suppress(Exception):
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)
                for _ in range(50):
                    os.kill(pid, 0)
                    time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its directory."""
        try:
            self._stop_quietly()
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
                if self.base.exists():
                    log(f"warning: could not delete {self.base}")
                self.base = None


@contextlib.contextmanager
def postgres_for_tests() -> Iterator[tuple[str | None, str]]:
    """Yield (base URL or None, a sentence saying which PostgreSQL it is, or why there is none)."""
    given = os.environ.get(URL_VAR, "").strip()
    if given:
        if urlsplit(given).query:  # each test appends its own ?schema=...
            given = urlunsplit(urlsplit(given)._replace(query=""))
            log(f"warning: ${URL_VAR} had a query string; using {redact(given)} (tests add ?schema=...)")
        yield given, f"the server given by ${URL_VAR}: {redact(given)}"
        return
    try:
        bin_dir = find_server_bin_dir()
    except NoPostgres as error:
        yield None, str(error)
        return
    server = ThrowawayServer(bin_dir)
    try:
        log(f"starting a throwaway PostgreSQL from {bin_dir} ...")
        started_at = time.monotonic()
        try:
            server.start()
        except (NoPostgres, OSError, subprocess.SubprocessError) as error:
            server.stop()
            yield None, f"a throwaway server could not be started from {bin_dir}: {error}"
            return
        took = time.monotonic() - started_at
        yield server.url, (
            f"a throwaway {server.version()} at {server.url} (data in {server.base}, started in {took:.1f}s; "
            "deleted after the run)"
        )
    finally:
        server.stop()


def run_pytest(command: Sequence[str], env: dict[str, str]) -> int:
    """Run pytest; when interrupted, let it stop its own workers before the server goes away."""
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt as interrupt:
        # Ctrl-C reached pytest too: give it a moment to stop by itself. A signal sent to this script
        # only (SIGTERM) is passed on as a Ctrl-C, so pytest unwinds its tests' finally blocks.
        for forward, wait in ((isinstance(interrupt, Terminated), 5.0), (True, 20.0)):
            if forward:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=wait)
                raise
        process.kill()
        process.wait()
        raise


class Terminated(KeyboardInterrupt):
    """This script was sent SIGTERM or SIGHUP: unwind as on Ctrl-C."""


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(f"signal {signum}")


def main(argv: Sequence[str]) -> int:
    # A SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the throwaway server is always removed.
    signal.signal(signal.SIGTERM, _terminate)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _terminate)
    required = truthy(os.environ.get(REQUIRE_VAR))
    try:
        with postgres_for_tests() as (url, description):
            env = dict(os.environ)
            if url is None:
                if required:
                    banner([
                        "PostgreSQL is REQUIRED but none could be had:",
                        *description.splitlines(),
                        f"(${REQUIRE_VAR} is set; install the PostgreSQL server, e.g.",
                        "`apt-get install postgresql`, or set $" + URL_VAR + ")",
                    ])
                    return EXIT_NO_POSTGRES
                skipped = [
                    "PostgreSQL tests are SKIPPED: no PostgreSQL server.",
                    *description.splitlines(),
                    "Install the PostgreSQL server (e.g. `apt-get install postgresql`) or",
                    f"set ${URL_VAR}=postgresql://user@host:port/dbname to run them.",
                ]
                banner(skipped)
                env.pop(URL_VAR, None)
            else:
                log(f"PostgreSQL: {description}")
                env[URL_VAR] = url
            command = [sys.executable, "-m", "pytest", *argv]
            log("running: " + shlex.join(command))
            returncode = run_pytest(command, env)
            if url is None:
                banner(skipped)  # again: the first one has scrolled away
            return returncode
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
