#!/usr/bin/env python3
"""Private PostgreSQL and MariaDB servers for local development and the integration tests.

    python3 scripts/services.py start  [postgres|mysql|moto|kinesis ...]   # install, start
    python3 scripts/services.py stop   [postgres|mysql|moto|kinesis ...]
    python3 scripts/services.py status [postgres|mysql|moto|kinesis ...]   # 3 if any stopped
    python3 scripts/services.py env    [postgres|mysql|moto|kinesis ...]   # `export` lines

With no server named, the command applies to all. `moto` is moto_server (S3, Glue, EMR
Serverless, Secrets Manager) on 127.0.0.1:24566, from a private venv under .run/moto.
`kinesis` is kinesalite (a Kinesis Data Streams API emulator with real sequence numbers,
shard iterators and resharding) on 127.0.0.1:24567, from a private npm install under
.run/kinesalite (needs node; installed with apt when missing and run as root).
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
    return [f"export {key}={shlex.quote(str(value))}" for key, value in values.items()]


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postgres:
    bindir: Path
    os_user: str  # the OS user the server runs as
    home: Path

    name = "postgres"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"

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
            "port": str(PG_PORT),
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
        result = run(
            [
                self.tool("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.socket_dir,
                "-p",
                str(PG_PORT),
                "-U",
                PG_SUPERUSER,
                "-d",
                "postgres",
            ],
            input_text=sql,
        )
        return result.stdout

    def start(self) -> None:
        if self.running():
            say(self.name, f"already running on {HOST}:{PG_PORT}")
        else:
            if port_open(PG_PORT):
                raise ServiceError(
                    f"port {PG_PORT} is already taken by another process; "
                    "it is not this repository's PostgreSQL"
                )
            self.init()
            self.write_config()
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            chown_tree(self.socket_dir, self.os_user)
            say(self.name, f"starting (log {self.log})")
            result = self.pg_ctl(
                "-l", self.log, "-w", "-t", str(int(READY_TIMEOUT_S)), "start", check=False
            )
            if result.returncode != 0:
                raise ServiceError(
                    f"postgres did not start ({result.stdout.strip()} {result.stderr.strip()})\n"
                    + log_tail(self.log)
                )
        self.wait_ready()
        self.provision()
        say(self.name, f"ready on {HOST}:{PG_PORT}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            ready = run(
                [self.tool("pg_isready"), "-q", "-h", HOST, "-p", str(PG_PORT)], check=False
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"postgres does not accept connections on {HOST}:{PG_PORT} after "
                    f"{READY_TIMEOUT_S:.0f}s\n" + log_tail(self.log)
                )
            time.sleep(0.25)

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

    def stop(self) -> None:
        if not self.running():
            say(self.name, "not running")
            return
        say(self.name, "stopping")
        timeout = str(int(STOP_TIMEOUT_S))
        result = self.pg_ctl("-m", "fast", "-w", "-t", timeout, "stop", check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"postgres did not stop: {result.stderr.strip()}\n" + log_tail(self.log)
            )
        say(self.name, "stopped")

    def status(self) -> bool:
        if self.running():
            print(f"postgres: running on {HOST}:{PG_PORT} (data {self.data})")
            return True
        print(f"postgres: stopped (data {self.data})")
        return False


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
class MariaDB:
    server: Path
    install_db: Path
    client: Path
    os_user: str  # --user= for mariadbd
    admin_user: str  # the MariaDB account with unix_socket auth for the OS user running us
    home: Path

    name = "mysql"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def cnf(self) -> Path:
        return self.home / "my.cnf"

    @property
    def sock(self) -> Path:
        return self.home / "mariadb.sock"

    @property
    def pid_file(self) -> Path:
        return self.home / "mariadb.pid"

    @property
    def log(self) -> Path:
        return self.home / "mariadb.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # Guard against a stale pid file whose pid now belongs to something else.
        return pid if str(self.cnf).encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None

    def write_config(self) -> None:
        self.cnf.write_text(
            "# written by scripts/services.py on every start; read only via --defaults-file\n"
            "[mariadbd]\n"
            f"datadir = {self.data}\n"
            f"socket = {self.sock}\n"
            f"pid-file = {self.pid_file}\n"
            f"log-error = {self.log}\n"
            f"port = {MYSQL_PORT}\n"
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

    def mariadb(self, sql: str) -> str:
        result = run(
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
        )
        return result.stdout

    def start(self) -> None:
        if self.running():
            say(self.name, f"already running on {HOST}:{MYSQL_PORT}")
            self.wait_ready(process=None)
        else:
            if port_open(MYSQL_PORT):
                raise ServiceError(
                    f"port {MYSQL_PORT} is already taken by another process; "
                    "it is not this repository's MariaDB"
                )
            self.home.mkdir(parents=True, exist_ok=True)
            self.write_config()
            self.init()
            self.sock.unlink(missing_ok=True)
            chown_tree(self.home, self.os_user)
            say(self.name, f"starting (log {self.log})")
            with self.log.open("a") as out:
                process = subprocess.Popen(
                    [self.server, f"--defaults-file={self.cnf}", f"--user={self.os_user}"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    cwd=self.home,
                    start_new_session=True,  # outlives this script
                )
            self.wait_ready(process)
        self.provision()
        say(self.name, f"ready on {HOST}:{MYSQL_PORT}")

    def wait_ready(self, process: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process is not None and process.poll() is not None:
                raise ServiceError(
                    f"mariadbd exited with {process.returncode} during startup\n"
                    + log_tail(self.log)
                )
            if self.sock.exists() and port_open(MYSQL_PORT):
                probe = run(
                    [
                        self.client,
                        "--no-defaults",
                        "--protocol=socket",
                        f"--socket={self.sock}",
                        f"--user={self.admin_user}",
                        "--batch",
                        "-e",
                        "SELECT 1",
                    ],
                    check=False,
                )
                if probe.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"mariadb does not accept connections on {HOST}:{MYSQL_PORT} after "
                    f"{READY_TIMEOUT_S:.0f}s\n" + log_tail(self.log)
                )
            time.sleep(0.25)

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

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            say(self.name, "not running")
            return
        say(self.name, f"stopping (pid {pid})")
        os.kill(pid, signal.SIGTERM)  # mariadbd shuts down cleanly on SIGTERM
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while Path(f"/proc/{pid}").exists():
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"mariadbd (pid {pid}) still running {STOP_TIMEOUT_S:.0f}s after SIGTERM\n"
                    + log_tail(self.log)
                )
            time.sleep(0.2)
        say(self.name, "stopped")

    def status(self) -> bool:
        pid = self.pid()
        if pid is not None:
            print(f"mysql: running on {HOST}:{MYSQL_PORT} (MariaDB pid {pid}, data {self.data})")
            return True
        print(f"mysql: stopped (data {self.data})")
        return False


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
class Moto:
    """moto_server from a private venv under .run/moto (independent of the PySpark venvs)."""

    name: str = "moto"

    @property
    def home(self) -> Path:
        return RUN / "moto"

    @property
    def pid_file(self) -> Path:
        return self.home / "moto.pid"

    @property
    def log(self) -> Path:
        return self.home / "moto.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def install(self) -> Path:
        venv = self.home / "venv"
        exe = venv / "bin" / "moto_server"
        stamp = venv / ".pin"
        if exe.exists() and stamp.exists() and stamp.read_text() == MOTO_PIN:
            return exe
        say(self.name, f"installing {MOTO_PIN} into {venv}")
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(venv / "bin" / "pip"), "install", "-q", MOTO_PIN])
        stamp.write_text(MOTO_PIN)
        return exe

    def start(self) -> None:
        if self.pid() is not None:
            say(self.name, f"already running on {HOST}:{MOTO_PORT}")
            return
        if port_open(MOTO_PORT):
            raise ServiceError(f"port {MOTO_PORT} is already taken by another process")
        exe = self.install()
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [str(exe), "-H", HOST, "-p", str(MOTO_PORT)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives this script, like the database servers
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not port_open(MOTO_PORT):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ServiceError("moto_server did not start\n" + log_tail(self.log))
            time.sleep(0.2)
        say(self.name, f"ready on {HOST}:{MOTO_PORT}")

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            say(self.name, "not running")
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)
        say(self.name, "stopped")

    def status(self) -> bool:
        pid = self.pid()
        print(f"moto: running on {HOST}:{MOTO_PORT} (pid {pid})" if pid else "moto: stopped")
        return pid is not None


# --------------------------------------------------------------------------------------------
# kinesalite (Kinesis Data Streams API)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kinesalite:
    """kinesalite from a private npm install under .run/kinesalite, streams kept in memory."""

    name: str = "kinesis"

    @property
    def home(self) -> Path:
        return RUN / "kinesalite"

    @property
    def pid_file(self) -> Path:
        return self.home / "kinesalite.pid"

    @property
    def log(self) -> Path:
        return self.home / "kinesalite.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"kinesalite" in cmdline else None  # not a recycled pid

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

    def install(self) -> tuple[Path, Path]:
        node, npm = self.node()
        cli = self.home / "node_modules" / "kinesalite" / "cli.js"
        stamp = self.home / ".pin"
        if cli.exists() and stamp.exists() and stamp.read_text() == KINESALITE_PIN:
            return node, cli
        say(self.name, f"npm install {KINESALITE_PIN} into {self.home}")
        self.home.mkdir(parents=True, exist_ok=True)
        # Streams live in memory (memdown): leveldown's native build is never needed.
        run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--prefix",
                self.home,
                KINESALITE_PIN,
            ],
        )
        stamp.write_text(KINESALITE_PIN)
        return node, cli

    def start(self) -> None:
        if self.pid() is not None:
            say(self.name, f"already running on {HOST}:{KINESIS_PORT}")
            return
        if port_open(KINESIS_PORT):
            raise ServiceError(f"port {KINESIS_PORT} is already taken by another process")
        node, cli = self.install()
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                # Stream state changes (create, split, merge) take 50 ms instead of 500.
                [
                    str(node),
                    str(cli),
                    "--port",
                    str(KINESIS_PORT),
                    "--createStreamMs",
                    "50",
                    "--deleteStreamMs",
                    "50",
                    "--updateStreamMs",
                    "50",
                    "--shardLimit",
                    "100",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not port_open(KINESIS_PORT):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ServiceError("kinesalite did not start\n" + log_tail(self.log))
            time.sleep(0.2)
        say(self.name, f"ready on {HOST}:{KINESIS_PORT}")

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            say(self.name, "not running")
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)
        say(self.name, "stopped")

    def status(self) -> bool:
        pid = self.pid()
        print(
            f"kinesis: running on {HOST}:{KINESIS_PORT} (kinesalite pid {pid})"
            if pid
            else "kinesis: stopped"
        )
        return pid is not None


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
}
SERVERS = ("postgres", "mysql", "moto", "kinesis")
USAGE = "usage: services.py start|stop|status|env [postgres|mysql|moto|kinesis ...]"


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

    factories: dict[str, Callable[[], Postgres | MariaDB | Moto | Kinesalite]] = {
        "postgres": postgres,
        "mysql": mariadb,
        "moto": Moto,
        "kinesis": Kinesalite,
    }
    all_up = True
    try:
        for server in wanted:
            service = factories[server]()
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
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a .run directory owned by someone else
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if all_up else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
