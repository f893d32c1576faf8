#!/usr/bin/env python3
"""Private PostgreSQL and MariaDB servers for local development and the integration tests.

    python3 scripts/services.py start  [postgres|mysql|moto|kinesis|kafka ...]   # install, start
    python3 scripts/services.py stop   [postgres|mysql|moto|kinesis|kafka ...]
    python3 scripts/services.py status [postgres|mysql|moto|kinesis|kafka ...]   # 3 if any stopped
    python3 scripts/services.py env    [postgres|mysql|moto|kinesis|kafka ...]   # `export` lines

With no server named, the command applies to all; naming some starts or stops only those
(the others, running or not, are left alone). `moto` is moto_server (S3, Glue, EMR
Serverless, Secrets Manager) on 127.0.0.1:24566, from a private venv under .run/moto.
`kinesis` is kinesalite (a Kinesis Data Streams API emulator with real sequence numbers,
shard iterators and resharding) on 127.0.0.1:24567, from a private npm install under
.run/kinesalite (needs node; installed with apt when missing and run as root).
`kafka` is a real Apache Kafka broker in KRaft mode (combined broker and controller, no
ZooKeeper) on 127.0.0.1:29092 (controller 29093): `kafka_2.13` and its dependencies resolved
from Maven Central by `mvn` once per pinned version into the jar cache beside the pinned
jars ($SLUICEWAY_CACHE, else ~/.cache/sluiceway: kafka-broker/<version>/lib, Maven's own
downloads in maven/), run with Java 17 (both installed with apt when missing and run as
root).
Standard library only, Python >= 3.11.

PostgreSQL listens on 127.0.0.1:25432 and MariaDB (MySQL protocol) on 127.0.0.1:23306 (plus
$SLUICEWAY_PORT_OFFSET, default 0), never on the default ports, and neither reads or touches
a system-wide server or its config. Both
have user `sluiceway` / `sluiceway-local` (password auth over TCP: scram-sha-256 in
PostgreSQL, mysql_native_password in MariaDB) and databases `sluiceway_test` and `tpch`.
MariaDB also grants `sluiceway` everything on databases named `sluiceway_*` so tests can
create scratch databases.

Files live under <repo>/.run/:
    postgres/{data,socket,postgres.log}   data owned by the server's OS user
    mariadb/{data,my.cnf,mariadb.sock,mariadb.pid,mariadb.log}
    moto/{venv,moto.pid,moto.log}
    kinesalite/{node_modules,kinesalite.pid,kinesalite.log}
    kafka/{data,server.properties,kafka.pid,kafka.log}
    services.env                          the `env` output, written on start
When run as root, PostgreSQL runs as the `postgres` OS user (it refuses to run as root) and
MariaDB as `mysql` when that user exists (else with --user=root); their directories are
chowned to that user. If that user cannot reach <repo>/.run (a parent directory without
search permission, e.g. a checkout under /root), the server's directory moves to
/var/lib/sluiceway/<hash of the repo path>/<server> instead; `status` prints where.

The administrative connections use the Unix socket in that private directory (PostgreSQL:
`trust` for local socket connections only; MariaDB: unix_socket auth for the OS user that
ran install-db), so no admin password exists anywhere.

Missing binaries are installed: as root with `apt-get install -y postgresql` /
`mariadb-server`, with a temporary /usr/sbin/policy-rc.d (exit 101) so the package does not
start a system server; as a normal user PostgreSQL falls back to the binaries bundled in the
`pgserver` wheel (pip-installed into .run/pgserver), and a missing MariaDB is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
ENV_FILE = RUN / "services.env"

HOST = "127.0.0.1"
# SLUICEWAY_PORT_OFFSET shifts every port, so several checkouts (git worktrees) can each
# run their own servers side by side.
PORT_OFFSET = int(os.environ.get("SLUICEWAY_PORT_OFFSET", "0"))
# Below 32768: Linux hands out 32768-60999 as ephemeral client ports, and a server port in
# that range can be taken by any outgoing connection at the wrong moment.
PG_PORT = 25432 + PORT_OFFSET
MYSQL_PORT = 23306 + PORT_OFFSET
MOTO_PORT = 24566 + PORT_OFFSET
MOTO_PIN = "moto[server]==5.2.5"
KINESIS_PORT = 24567 + PORT_OFFSET
KINESALITE_PIN = "kinesalite@3.3.3"
# 9092/9093 shifted like the others. The broker's version is one MSK offers (4.1.x).
KAFKA_PORT = 29092 + PORT_OFFSET
KAFKA_CONTROLLER_PORT = 29093 + PORT_OFFSET
KAFKA_VERSION = "4.1.1"
# Kafka 4 logs through SLF4J 1.7; this binding sends that to log4j2 (the broker's own).
LOG4J_VERSION = "2.24.3"
# Credentials moto accepts; they only ever reach the local endpoint.
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
APP_USER = "sluiceway"
APP_PASSWORD = "sluiceway-local"
DATABASES = ("sluiceway_test", "tpch")
DEFAULT_DB = "sluiceway_test"
PG_SUPERUSER = "postgres"

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 30


class ServiceError(Exception):
    """A server could not be installed, initialised, started or stopped."""


def say(server: str, message: str) -> None:
    print(f"==> {server}: {message}", flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    tail = text.splitlines()[-lines:]
    return f"last {len(tail)} lines of {path}:\n" + "\n".join("    " + line for line in tail)


def run(
    cmd: Sequence[str | Path],
    *,
    as_user: str | None = None,
    input_text: str | None = None,
    cwd: Path | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (as `as_user` via runuser when root), capturing output."""
    argv = [str(part) for part in cmd]
    if as_user is not None and is_root() and as_user != "root":
        argv = ["runuser", "-u", as_user, "--", *argv]
    try:
        result = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ServiceError(f"cannot run {argv[0]}: {exc.strerror}") from exc
    if check and result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-3000:]
        raise ServiceError(
            f"{shlex.join(argv)} exited with {result.returncode}:\n    "
            + output.replace("\n", "\n    ")
        )
    return result


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def alive(pid: int) -> bool:
    """Whether `pid` is a process that has not exited.

    An exited process stays in /proc as a zombie until its parent reaps it, which never
    happens under a container init that does not reap orphans; its cmdline reads empty.
    """
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() != b""
    except OSError:
        return False


def reachable_by(user: str, path: Path) -> bool:
    """Whether OS user `user` can search `path` (and so every directory above it)."""
    path.mkdir(parents=True, exist_ok=True)
    return run(["test", "-x", path, "-a", "-r", path], as_user=user, check=False).returncode == 0


def server_home(name: str, os_user: str) -> Path:
    """The directory holding one server's files: .run/<name>, or a fallback root can hand over."""
    preferred = RUN / name
    if not is_root() or os_user == "root" or reachable_by(os_user, RUN):
        return preferred
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    return Path("/var/lib/sluiceway") / digest / name


def chown_tree(path: Path, os_user: str) -> None:
    if not is_root() or os_user == "root":
        return
    entry = pwd.getpwnam(os_user)
    if not path.is_dir():
        os.lchown(path, entry.pw_uid, entry.pw_gid)
        return
    for base, dirs, files in os.walk(path):
        for child in [base, *(os.path.join(base, d) for d in dirs)]:
            os.chown(child, entry.pw_uid, entry.pw_gid)
        for child in files:
            os.lchown(os.path.join(base, child), entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def services_blocked() -> Iterator[None]:
    """Stop Debian maintainer scripts from starting a system server during apt-get install."""
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():
        # Someone else's policy (Docker images ship one that already says 101): leave it.
        yield
        return
    policy.write_text("#!/bin/sh\n# temporary, from sluiceway scripts/services.py\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def apt_install(server: str, package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", package]
    say(server, f"apt-get install -y {package} (system server start blocked by policy-rc.d)")
    started = time.monotonic()
    with services_blocked():
        result = run(cmd, env=env, check=False)
        if result.returncode != 0:
            say(server, "apt-get install failed; running apt-get update and retrying")
            run(["apt-get", "update"], env=env)
            run(cmd, env=env)
    say(server, f"installed {package} in {time.monotonic() - started:.0f}s")


def env_lines(servers: Sequence[str]) -> list[str]:
    values: dict[str, str | int] = {}
    if "postgres" in servers:
        values |= {
            "SLUICEWAY_PG_HOST": HOST,
            "SLUICEWAY_PG_PORT": PG_PORT,
            "SLUICEWAY_PG_USER": APP_USER,
            "SLUICEWAY_PG_PASSWORD": APP_PASSWORD,
            "SLUICEWAY_PG_DB": DEFAULT_DB,
        }
    if "mysql" in servers:
        values |= {
            "SLUICEWAY_MYSQL_HOST": HOST,
            "SLUICEWAY_MYSQL_PORT": MYSQL_PORT,
            "SLUICEWAY_MYSQL_USER": APP_USER,
            "SLUICEWAY_MYSQL_PASSWORD": APP_PASSWORD,
            "SLUICEWAY_MYSQL_DB": DEFAULT_DB,
        }
    if "moto" in servers:
        # AWS_ENDPOINT_URL is the standard variable: boto3 and the AWS CLI send every call there.
        values |= {"AWS_ENDPOINT_URL": f"http://{HOST}:{MOTO_PORT}", **MOTO_ENV}
    if "kinesis" in servers:
        # The service-specific variable wins over AWS_ENDPOINT_URL for Kinesis clients only.
        endpoint = f"http://{HOST}:{KINESIS_PORT}"
        values |= {
            "SLUICEWAY_KINESIS_ENDPOINT": endpoint,
            "AWS_ENDPOINT_URL_KINESIS": endpoint,
            **MOTO_ENV,
        }
    if "kafka" in servers:
        values["SLUICEWAY_KAFKA_BOOTSTRAP"] = f"{HOST}:{KAFKA_PORT}"
    return [f"export {key}={shlex.quote(str(value))}" for key, value in values.items()]


# --------------------------------------------------------------------------------------------
# what every service shares
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One server whose files live in `home`, named after it: <home>/<home name>.{log,pid}.

    The base runs the life cycle: port check, start, wait until ready, stop, status. A
    service supplies what differs: `prepare` (install, initialise, configure; returns the
    command line), `ready` (the readiness probe), `provision` and `status_detail`. Servers
    run in their own session and are found again through their pid file; PostgreSQL, whose
    pg_ctl does all that itself, replaces `running`, `spawn` and `halt`.
    """

    home: Path

    name: ClassVar[str]  # as on the command line and in every message
    program: ClassVar[str]  # the server process, as errors name it
    port: ClassVar[int]
    # Database servers keep accounts and data across restarts, so `start` provisions them
    # even when already running, and they say when they start and stop (initdb, crash
    # recovery and the shutdown checkpoint take seconds). The emulators hold everything in
    # memory and are up in a moment.
    database: ClassVar[bool] = False
    # mariadbd writes its own pid file, as its OS user; one written here (as root) before it
    # would stop it from starting.
    writes_own_pid_file: ClassVar[bool] = False

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / f"{self.home.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.home.name}.pid"

    def pid(self) -> int | None:
        """The server's pid, if the pid file names a live process started from `home`."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        # Every server's command line names a file under its home. A stale pid file's pid may
        # since belong to any process, even another checkout's server: never signal that one.
        return pid if str(self.home).encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None

    def prepare(self) -> list[str | Path]:
        """Install, initialise and configure what the server needs; return its command line."""
        raise NotImplementedError

    def ready(self) -> bool:
        return port_open(self.port)

    def provision(self) -> None:
        """Create the accounts and databases (idempotent). The emulators have none."""

    def status_detail(self, up: bool) -> str:
        return f"pid {self.pid()}" if up else ""

    def start(self) -> None:
        if self.running():
            say(self.name, f"already running on {self.address}")
            if not self.database:
                return  # nothing to provision: running is ready
            self.wait_ready(None)
        else:
            if port_open(self.port):
                raise ServiceError(
                    f"port {self.port} is already taken by another process; "
                    f"it is not this repository's {self.program}"
                )
            command = self.prepare()
            if self.database:
                say(self.name, f"starting (log {self.log})")
            self.wait_ready(self.spawn(command))
        self.provision()
        say(self.name, f"ready on {self.address}")

    def spawn(self, command: Sequence[str | Path]) -> subprocess.Popen[bytes] | None:
        """Start the server in the background; return its process, to notice an early exit."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [str(part) for part in command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,  # outlives this script
            )
        if not self.writes_own_pid_file:
            self.pid_file.write_text(str(process.pid))
        return process

    def wait_ready(self, process: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process is not None and process.poll() is not None:
                raise ServiceError(
                    f"{self.program} exited with {process.returncode} during startup\n"
                    + log_tail(self.log)
                )
            if self.ready():
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.program} does not accept connections on {self.address} after "
                    f"{READY_TIMEOUT_S:.0f}s\n" + log_tail(self.log)
                )
            time.sleep(0.25)

    def stop(self) -> None:
        if not self.running():
            say(self.name, "not running")
            return
        self.halt()
        say(self.name, "stopped")

    def halt(self) -> None:
        """Ask the server to shut down and wait until it has exited."""
        pid = self.pid()
        if pid is None:  # exited since running() looked
            return
        if self.database:
            say(self.name, f"stopping (pid {pid})")
        os.kill(pid, signal.SIGTERM)  # every one of them shuts down cleanly on SIGTERM
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive(pid):
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.program} (pid {pid}) still running {STOP_TIMEOUT_S:.0f}s after "
                    "SIGTERM\n" + log_tail(self.log)
                )
            time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> bool:
        up = self.running()
        detail = self.status_detail(up)
        state = f"running on {self.address}" if up else "stopped"
        print(f"{self.name}: {state}" + (f" ({detail})" if detail else ""))
        return up


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postgres(Service):
    """pg_ctl owns the server process (and its postmaster.pid): it starts, checks and stops it."""

    bindir: Path
    os_user: str  # the OS user the server runs as

    name = "postgres"
    program = "postgres"
    port = PG_PORT
    database = True

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    def tool(self, name: str) -> Path:
        return self.bindir / name

    def pg_ctl(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            [self.tool("pg_ctl"), "-D", self.data, *args],
            as_user=self.os_user,
            cwd=self.home,
            check=check,
        )

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        # pg_ctl status: 0 running, 3 not running, 4 no usable data directory.
        return self.pg_ctl("status", check=False).returncode == 0

    def prepare(self) -> list[str | Path]:
        """initdb once, the config on every start; returns pg_ctl's arguments to start it."""
        self.init()
        self.write_config()
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        chown_tree(self.socket_dir, self.os_user)
        return ["-l", self.log, "-w", "-t", str(int(READY_TIMEOUT_S)), "start"]

    def spawn(self, command: Sequence[str | Path]) -> None:
        # pg_ctl starts the server in the background and waits until it is up.
        result = self.pg_ctl(*command, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"postgres did not start ({result.stdout.strip()} {result.stderr.strip()})\n"
                + log_tail(self.log)
            )

    def ready(self) -> bool:
        probe: list[str | Path] = [self.tool("pg_isready"), "-q", "-h", HOST, "-p", str(self.port)]
        return run(probe, check=False).returncode == 0

    def halt(self) -> None:
        say(self.name, "stopping")
        timeout = str(int(STOP_TIMEOUT_S))
        result = self.pg_ctl("-m", "fast", "-w", "-t", timeout, "stop", check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"postgres did not stop: {result.stderr.strip()}\n" + log_tail(self.log)
            )

    def status_detail(self, up: bool) -> str:
        return f"data {self.data}"

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        say(self.name, f"initdb {self.data}")
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        chown_tree(self.home, self.os_user)
        run(
            [
                self.tool("initdb"),
                "-D",
                self.data,
                "-U",
                PG_SUPERUSER,
                "--encoding=UTF8",
                "--no-locale",
                # Local socket connections (only the server's OS user and root can reach the
                # 0700 socket directory) are the admin path; TCP always needs a password.
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            as_user=self.os_user,
            cwd=self.home,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'sluiceway.conf'\n")

    def write_config(self) -> None:
        # Rewritten on every start so edits to this script take effect. A throwaway dev
        # server: durability is traded for load speed (fsync off).
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "password_encryption": "'scram-sha-256'",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "max_wal_size": "'2GB'",
        }
        text = "# written by scripts/services.py on every start\n" + "".join(
            f"{key} = {value}\n" for key, value in settings.items()
        )
        conf = self.data / "sluiceway.conf"
        conf.write_text(text)
        chown_tree(conf, self.os_user)

    def psql(self, sql: str) -> str:
        admin = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", PG_SUPERUSER]
        psql = [str(self.tool("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1", *admin]
        return run([*psql, "-d", "postgres"], input_text=sql).stdout

    def provision(self) -> None:
        pw = APP_PASSWORD.replace("'", "''")
        statements = [
            f"""DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_USER}') THEN
                   CREATE ROLE {APP_USER} LOGIN;
                 END IF;
               END $$;""",
            f"ALTER ROLE {APP_USER} WITH LOGIN CREATEDB PASSWORD '{pw}';",
        ]
        for db in DATABASES:
            statements += [
                f"SELECT 'CREATE DATABASE {db} OWNER {APP_USER}"
                " ENCODING ''UTF8'' TEMPLATE template0'"
                f" WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{db}')\\gexec",
                f"ALTER DATABASE {db} OWNER TO {APP_USER};",
                f"GRANT ALL PRIVILEGES ON DATABASE {db} TO {APP_USER};",
            ]
        self.psql("\n".join(statements) + "\n")


def pg_major(bindir: Path) -> str:
    """The major version of the server in bindir ("postgres (PostgreSQL) 15.18" -> "15")."""
    words = run([bindir / "postgres", "--version"], check=False).stdout.split()
    return words[-1].split(".")[0] if words else ""


def find_pg_bindir(data: Path | None = None) -> Path | None:
    """Server binaries; for an existing data directory, those of its major version if any."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = run([pg_config, "--bindir"], check=False).stdout.strip()
        if out:
            candidates.append(Path(out))
    # Debian keeps each major version apart; prefer the newest.
    versioned = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(versioned, key=lambda p: int(p.parent.name), reverse=True)
    candidates += sorted((RUN / "pgserver").glob("**/pginstall/bin"))
    for on_path in ("pg_ctl", "initdb"):
        found = shutil.which(on_path)
        if found:
            candidates.append(Path(found).resolve().parent)
    tools = ("postgres", "initdb", "pg_ctl", "psql", "pg_isready")
    usable = [b for b in candidates if all((b / tool).is_file() for tool in tools)]
    if not usable:
        return None
    # A data directory only runs under its own major version (pg_ctl would refuse).
    with contextlib.suppress(OSError):
        if data is not None and (data / "PG_VERSION").is_file():
            wanted = (data / "PG_VERSION").read_text().strip()
            usable.sort(key=lambda bindir: pg_major(bindir) != wanted)
    return usable[0]


def install_pgserver() -> None:
    target = RUN / "pgserver"
    say("postgres", f"no PostgreSQL server found; pip install pgserver into {target}")
    if run([sys.executable, "-m", "pip", "--version"], check=False).returncode != 0:
        raise ServiceError(
            "no PostgreSQL server binaries, not root (so no apt-get), and no pip for "
            f"{sys.executable} to fetch the pgserver wheel. Install PostgreSQL (e.g. "
            "`sudo apt-get install postgresql`) or put its bin directory on PATH."
        )
    run([sys.executable, "-m", "pip", "install", "--quiet", "--target", target, "pgserver"])
    if find_pg_bindir() is None:
        raise ServiceError(f"pgserver installed into {target} but no pginstall/bin found there")


def postgres() -> Postgres:
    bindir = find_pg_bindir()
    if bindir is None:
        if is_root():
            apt_install("postgres", "postgresql")
            if find_pg_bindir() is None:
                raise ServiceError("apt-get installed postgresql but no server binaries found")
        else:
            install_pgserver()
    os_user = current_user()
    if is_root():
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServiceError(
                "running as root but there is no `postgres` OS user to run the server as "
                "(PostgreSQL refuses to run as root)"
            ) from exc
        os_user = "postgres"
    home = server_home("postgres", os_user)
    bindir = find_pg_bindir(home / "data")
    if bindir is None:  # pragma: no cover - found or installed above
        raise ServiceError("no PostgreSQL server binaries found")
    return Postgres(bindir=bindir, os_user=os_user, home=home)


# --------------------------------------------------------------------------------------------
# MariaDB
# --------------------------------------------------------------------------------------------


def first_executable(names: Sequence[str]) -> Path | None:
    extra = ("/usr/sbin", "/usr/bin", "/usr/libexec", "/usr/local/mysql/bin", "/usr/local/bin")
    for name in names:
        found = shutil.which(name) or next(
            (str(Path(d) / name) for d in extra if (Path(d) / name).is_file()), None
        )
        if found:
            return Path(found)
    return None


@dataclass(frozen=True)
class MariaDB(Service):
    server: Path
    install_db: Path
    client: Path
    os_user: str  # --user= for mariadbd
    admin_user: str  # the MariaDB account with unix_socket auth for the OS user running us

    name = "mysql"
    program = "mariadbd"
    port = MYSQL_PORT
    database = True
    writes_own_pid_file = True

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def cnf(self) -> Path:
        return self.home / "my.cnf"

    @property
    def sock(self) -> Path:
        return self.home / "mariadb.sock"

    def prepare(self) -> list[str | Path]:
        self.home.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.init()
        self.sock.unlink(missing_ok=True)
        chown_tree(self.home, self.os_user)
        return [self.server, f"--defaults-file={self.cnf}", f"--user={self.os_user}"]

    def ready(self) -> bool:
        return (
            self.sock.exists()
            and port_open(self.port)
            and self.mariadb("SELECT 1", check=False).returncode == 0
        )

    def status_detail(self, up: bool) -> str:
        return f"MariaDB pid {self.pid()}, data {self.data}" if up else f"data {self.data}"

    def write_config(self) -> None:
        self.cnf.write_text(
            "# written by scripts/services.py on every start; read only via --defaults-file\n"
            "[mariadbd]\n"
            f"datadir = {self.data}\n"
            f"socket = {self.sock}\n"
            f"pid-file = {self.pid_file}\n"
            f"log-error = {self.log}\n"
            f"port = {self.port}\n"
            f"bind-address = {HOST}\n"
            "skip-name-resolve\n"
            "default-time-zone = '+00:00'\n"
            "character-set-server = utf8mb4\n"
            "collation-server = utf8mb4_unicode_ci\n"
            "max_connections = 200\n"
            "max_allowed_packet = 256M\n"
            "innodb_buffer_pool_size = 256M\n"
            # A throwaway dev server: no fsync per commit.
            "innodb_flush_log_at_trx_commit = 2\n"
            "\n[client]\n"
            f"socket = {self.sock}\n"
            "default-character-set = utf8mb4\n"
        )
        self.cnf.chmod(0o644)  # mariadbd ignores world-writable option files

    def init(self) -> None:
        if (self.data / "mysql").is_dir():
            return
        say(self.name, f"mariadb-install-db {self.data}")
        self.data.mkdir(parents=True, exist_ok=True)
        chown_tree(self.home, self.os_user)
        run(
            [
                self.install_db,
                f"--defaults-file={self.cnf}",
                f"--user={self.os_user}",
                f"--datadir={self.data}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            cwd=self.home,
        )

    def mariadb(self, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            [
                self.client,
                "--no-defaults",
                "--protocol=socket",
                f"--socket={self.sock}",
                f"--user={self.admin_user}",
                "--batch",
                "--skip-column-names",
            ],
            input_text=sql,
            check=check,
        )

    def provision(self) -> None:
        pw = APP_PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
        statements = [
            # install-db may create anonymous accounts; they would shadow `sluiceway` locally.
            "DROP USER IF EXISTS ''@'localhost'",
            f"DROP USER IF EXISTS ''@'{socket.gethostname()}'",
        ]
        for host in ("%", "localhost"):
            account = f"'{APP_USER}'@'{host}'"
            statements += [
                f"CREATE USER IF NOT EXISTS {account}",
                f"ALTER USER {account} IDENTIFIED VIA mysql_native_password USING PASSWORD('{pw}')",
            ]
        for db in DATABASES:
            statements += [
                f"CREATE DATABASE IF NOT EXISTS `{db}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                f"ALTER DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            ]
        for host in ("%", "localhost"):
            for db in (*DATABASES, "sluiceway\\_%"):
                statements.append(f"GRANT ALL PRIVILEGES ON `{db}`.* TO '{APP_USER}'@'{host}'")
        statements.append("FLUSH PRIVILEGES")
        self.mariadb(";\n".join(statements) + ";\n")


def find_mariadb() -> tuple[Path, Path, Path] | None:
    server = first_executable(["mariadbd", "mysqld"])
    install_db = first_executable(["mariadb-install-db", "mysql_install_db"])
    client = first_executable(["mariadb", "mysql"])
    if server is None or install_db is None or client is None:
        return None
    return server, install_db, client


def mariadb() -> MariaDB:
    found = find_mariadb()
    if found is None:
        if not is_root():
            raise ServiceError(
                "no MariaDB server found (mariadbd, mariadb-install-db and the mariadb client "
                "are needed). Install it, e.g. `sudo apt-get install mariadb-server`, or run "
                "this script as root once to install it."
            )
        apt_install("mysql", "mariadb-server")
        found = find_mariadb()
        if found is None:
            raise ServiceError("apt-get installed mariadb-server but mariadbd was not found")
    server, install_db, client = found
    version = run([server, "--version"], check=False).stdout
    if "mariadb" not in version.lower():
        raise ServiceError(
            f"{server} is not MariaDB ({version.strip()}); this script initialises MariaDB only"
        )
    admin_user = current_user()
    os_user = admin_user
    if is_root():
        try:
            pwd.getpwnam("mysql")
            os_user = "mysql"
        except KeyError:
            os_user = "root"
    return MariaDB(
        server=server,
        install_db=install_db,
        client=client,
        os_user=os_user,
        admin_user=admin_user,
        home=server_home("mariadb", os_user),
    )


# --------------------------------------------------------------------------------------------
# moto (S3, Glue, EMR Serverless, Secrets Manager) in server mode
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moto(Service):
    """moto_server from a private venv under .run/moto (independent of the PySpark venvs)."""

    home: Path = RUN / "moto"

    name = "moto"
    program = "moto_server"
    port = MOTO_PORT

    def prepare(self) -> list[str | Path]:
        venv = self.home / "venv"
        exe = venv / "bin" / "moto_server"
        stamp = venv / ".pin"
        if not (exe.exists() and stamp.exists() and stamp.read_text() == MOTO_PIN):
            say(self.name, f"installing {MOTO_PIN} into {venv}")
            run([sys.executable, "-m", "venv", str(venv)])
            run([str(venv / "bin" / "pip"), "install", "-q", MOTO_PIN])
            stamp.write_text(MOTO_PIN)
        return [exe, "-H", HOST, "-p", str(self.port)]


# --------------------------------------------------------------------------------------------
# kinesalite (Kinesis Data Streams API)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kinesalite(Service):
    """kinesalite from a private npm install under .run/kinesalite, streams kept in memory."""

    home: Path = RUN / "kinesalite"

    name = "kinesis"
    program = "kinesalite"
    port = KINESIS_PORT

    def status_detail(self, up: bool) -> str:
        return f"kinesalite pid {self.pid()}" if up else ""

    def node(self) -> tuple[Path, Path]:
        node, npm = shutil.which("node"), shutil.which("npm")
        if (node is None or npm is None) and is_root():
            for package in ("nodejs", "npm"):
                apt_install(self.name, package)
            node, npm = shutil.which("node"), shutil.which("npm")
        if node is None or npm is None:
            raise ServiceError(
                "kinesalite needs node and npm (e.g. `sudo apt-get install nodejs npm`)"
            )
        return Path(node), Path(npm)

    def prepare(self) -> list[str | Path]:
        node, npm = self.node()
        cli = self.home / "node_modules" / "kinesalite" / "cli.js"
        stamp = self.home / ".pin"
        if not (cli.exists() and stamp.exists() and stamp.read_text() == KINESALITE_PIN):
            say(self.name, f"npm install {KINESALITE_PIN} into {self.home}")
            self.home.mkdir(parents=True, exist_ok=True)
            # Streams live in memory (memdown): leveldown's native build is never needed.
            quiet = ["--no-audit", "--no-fund", "--ignore-scripts"]
            run([npm, "install", *quiet, "--prefix", self.home, KINESALITE_PIN])
            stamp.write_text(KINESALITE_PIN)
        # Stream state changes (create, split, merge) take 50 ms instead of 500.
        timings = ["--createStreamMs", "50", "--deleteStreamMs", "50", "--updateStreamMs", "50"]
        return [node, cli, "--port", str(self.port), *timings, "--shardLimit", "100"]


# --------------------------------------------------------------------------------------------
# Apache Kafka (a real broker, KRaft mode)
# --------------------------------------------------------------------------------------------

KAFKA_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <!-- written by scripts/services.py: the broker's jars, resolved like any Maven build -->
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.sluiceway</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""
# Warnings and the start-up line only: the broker's INFO log is megabytes a day.
KAFKA_LOG4J = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


def cache_root() -> Path:
    """The cache sluiceway.jars fetches into: $SLUICEWAY_CACHE, else ~/.cache/sluiceway."""
    return Path(os.environ.get("SLUICEWAY_CACHE") or Path.home() / ".cache" / "sluiceway")


def java17() -> Path:
    """A `java` of version 17 or newer: $JAVA_HOME's, the system's 17, or one apt installs."""
    candidates = [
        os.environ.get("JAVA_HOME", ""),
        *sorted(map(str, Path("/usr/lib/jvm").glob("*17*"))),
    ]
    for home in candidates:
        java = Path(home) / "bin" / "java"
        if home and java.is_file() and java_major(java) >= 17:
            return java
    found = shutil.which("java")
    if found and java_major(Path(found)) >= 17:
        return Path(found)
    if not is_root():
        raise ServiceError("kafka needs Java 17 or newer (set JAVA_HOME)")
    apt_install("kafka", "openjdk-17-jre-headless")
    return java17()


def java_major(java: Path) -> int:
    banner = run([java, "-version"], check=False).stderr
    digits = banner.split('"')[1].split(".") if banner.count('"') >= 2 else ["0"]
    return int(digits[0]) if digits[0].isdigit() else 0


def kafka_cluster_id() -> str:
    """A cluster id as Kafka makes them: 16 random bytes, URL-safe base64, no padding."""
    import base64
    import uuid

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def kafka_metadata_brokers(port: int) -> int:
    """How many brokers a Metadata (v4) request to `port` lists; 0 if it gets no answer.

    A broker lists itself once it has registered with the controller: before that a
    client can connect but cannot create topics or produce.
    """
    import struct

    client = b"sluiceway-services"
    body = struct.pack(">hhih", 3, 4, 1, len(client)) + client + struct.pack(">ib", -1, 0)
    try:
        with socket.create_connection((HOST, port), timeout=2) as conn:
            conn.sendall(struct.pack(">i", len(body)) + body)
            head = b""
            while len(head) < 16:  # size, correlation id, throttle time, broker count
                chunk = conn.recv(16 - len(head))
                if not chunk:
                    return 0
                head += chunk
    except OSError:
        return 0
    return int(struct.unpack(">i", head[12:16])[0])


@dataclass(frozen=True)
class Kafka(Service):
    """One KRaft node (broker and controller), data kept under .run/kafka/data."""

    home: Path = RUN / "kafka"

    name = "kafka"
    program = "kafka"
    port = KAFKA_PORT

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def lib(self) -> Path:
        """The broker's jars: cached per version, like the pinned jars, not per checkout."""
        return cache_root() / "kafka-broker" / KAFKA_VERSION / "lib"

    def status_detail(self, up: bool) -> str:
        return f"Kafka {KAFKA_VERSION} pid {self.pid()}, data {self.home / 'data'}" if up else ""

    def ready(self) -> bool:
        return kafka_metadata_brokers(self.port) > 0

    def prepare(self) -> list[str | Path]:
        java = java17()
        self.install()
        self.write_config()
        if not (self.home / "data" / "meta.properties").exists():
            say(self.name, f"formatting {self.home / 'data'} (KRaft)")
            run(
                [
                    *self.java_command(java),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    kafka_cluster_id(),
                    "-c",
                    self.config,
                ]
            )
        return [*self.java_command(java), "kafka.Kafka", self.config]

    def java_command(self, java: Path) -> list[str | Path]:
        return [
            java,
            "-Xms128m",
            "-Xmx512m",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={(self.home / 'log4j2.properties').as_uri()}",
            "-cp",
            f"{self.lib}/*",
        ]

    def install(self) -> None:
        """Resolve the broker's jars from Maven Central into the cache, once per version."""
        lib = self.lib
        stamp = lib.parent / ".pin"
        pin = f"kafka_2.13:{KAFKA_VERSION} log4j-slf4j-impl:{LOG4J_VERSION}"
        if lib.is_dir() and stamp.exists() and stamp.read_text() == pin:
            return
        mvn = shutil.which("mvn")
        if mvn is None and is_root():
            apt_install(self.name, "maven")
            mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceError("kafka needs Maven (`mvn`) to fetch the broker's jars")
        say(self.name, f"resolving kafka_2.13 {KAFKA_VERSION} and its dependencies with mvn")
        lib.parent.mkdir(parents=True, exist_ok=True)
        pom = lib.parent / "pom.xml"
        pom.write_text(KAFKA_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        shutil.rmtree(lib, ignore_errors=True)
        run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                pom,
                f"-Dmaven.repo.local={cache_root() / 'maven'}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={lib}",
                "-DincludeScope=runtime",
            ]
        )
        stamp.write_text(pin)

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "log4j2.properties").write_text(KAFKA_LOG4J)
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{KAFKA_CONTROLLER_PORT}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            # One node: the internal topics cannot have more replicas than brokers.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are made on purpose (`sluiceway produce --create`, the tests): a
            # misspelt name in a spec is an error, not a new empty topic.
            "auto.create.topics.enable": "false",
        }
        self.config.write_text(
            "# written by scripts/services.py on every start\n"
            + "".join(f"{key}={value}\n" for key, value in settings.items())
        )


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

ALIASES = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "pg": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "moto": "moto",
    "kinesis": "kinesis",
    "kinesalite": "kinesis",
    "kafka": "kafka",
    "msk": "kafka",
}
# Each server's factory (which finds or installs its binaries), in start order.
SERVICES: dict[str, Callable[[], Service]] = {
    "postgres": postgres,
    "mysql": mariadb,
    "moto": Moto,
    "kinesis": Kinesalite,
    "kafka": Kafka,
}
SERVERS = tuple(SERVICES)
USAGE = "usage: services.py start|stop|status|env [postgres|mysql|moto|kinesis|kafka ...]"


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in ("start", "stop", "status", "env"):
        print(USAGE, file=sys.stderr)
        return 2
    command, names = argv[0], argv[1:]
    unknown = [n for n in names if n not in ALIASES]
    if unknown:
        print(f"unknown server {', '.join(unknown)}; {USAGE}", file=sys.stderr)
        return 2
    wanted = [s for s in SERVERS if not names or s in {ALIASES[n] for n in names}]

    if command == "env":
        print("\n".join(env_lines(wanted)))
        return 0

    all_up = True
    try:
        for server in wanted:
            service = SERVICES[server]()
            if command == "start":
                service.start()
            elif command == "stop":
                service.stop()
            else:
                all_up = service.status() and all_up
        if command == "start":
            RUN.mkdir(parents=True, exist_ok=True)
            ENV_FILE.write_text("\n".join(env_lines(SERVERS)) + "\n")
            print(
                f'==> environment written to {ENV_FILE} (source it, or eval "$(python3 '
                f'scripts/services.py env)")',
                flush=True,
            )
    except (ServiceError, OSError) as exc:  # OSError: e.g. a .run directory owned by someone else
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if all_up else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
