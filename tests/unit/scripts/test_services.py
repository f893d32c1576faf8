"""scripts/services.py: the life cycle every service shares (port, pid file, log, start, stop).

The real servers run under scripts/test.sh; here a tiny Python process stands in for one.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "services.py"


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("sluiceway_services_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building classes
    spec.loader.exec_module(module)
    return module


services = _load_script()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((services.HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class HttpServer(services.Service):  # type: ignore[name-defined]
    """An HTTP server whose command line names its home, as every real service's does."""

    name = "http"
    program = "http.server"
    port = 0  # set per test
    provisioned: ClassVar[list[str]] = []

    def prepare(self) -> list[str | Path]:
        serve = ["-m", "http.server", "--bind", services.HOST, "--directory", self.home]
        return [sys.executable, *serve, str(self.port)]

    def provision(self) -> None:
        self.provisioned.append(self.name)


@dataclass(frozen=True)
class CrashingServer(HttpServer):
    def prepare(self) -> list[str | Path]:
        return [sys.executable, "-c", "print('bad config line 3'); raise SystemExit(3)"]


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(HttpServer, "port", _free_port())
    monkeypatch.setattr(HttpServer, "provisioned", [])
    server = HttpServer(home=tmp_path / "http")
    yield server
    if server.running():
        server.halt()


def test_start_writes_pid_file_and_stop_removes_it(http: Any, capsys: pytest.CaptureFixture[str]):
    http.start()
    pid = http.pid()
    assert pid is not None
    assert http.pid_file == http.home / "http.pid"
    assert http.pid_file.read_text() == str(pid)
    assert http.status() is True

    http.stop()

    assert not services.alive(pid)
    assert not http.pid_file.exists()
    assert http.status() is False
    assert capsys.readouterr().out.splitlines() == [
        f"==> http: ready on {http.address}",
        f"http: running on {http.address} (pid {pid})",
        "==> http: stopped",
        "http: stopped",
    ]


def test_start_twice_says_already_running_and_keeps_the_process(
    http: Any, capsys: pytest.CaptureFixture[str]
):
    http.start()
    pid = http.pid()
    http.start()

    assert http.pid() == pid
    assert (
        capsys.readouterr().out.splitlines()[-1] == f"==> http: already running on {http.address}"
    )
    assert http.provisioned == ["http"]  # not a database: nothing more to provision


def test_start_when_running_provisions_a_database_again(
    http: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(HttpServer, "database", True)
    http.start()
    http.start()

    assert http.provisioned == ["http", "http"]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"==> http: starting (log {http.log})"
    assert out[-2:] == [
        f"==> http: already running on {http.address}",
        f"==> http: ready on {http.address}",
    ]


def test_stop_when_stopped_says_not_running(http: Any, capsys: pytest.CaptureFixture[str]):
    http.stop()

    assert capsys.readouterr().out == "==> http: not running\n"


def test_stale_pid_file_naming_another_process_is_never_signalled(
    http: Any, capsys: pytest.CaptureFixture[str]
):
    other = subprocess.Popen(["sleep", "30"])
    try:
        http.home.mkdir(parents=True)
        http.pid_file.write_text(str(other.pid))

        assert http.running() is False
        http.stop()

        assert other.poll() is None
        assert capsys.readouterr().out == "==> http: not running\n"
    finally:
        other.kill()
        other.wait()


def test_taken_port_is_refused_before_anything_starts(http: Any):
    with socket.socket() as squatter:
        squatter.bind((services.HOST, http.port))
        squatter.listen()

        with pytest.raises(services.ServiceError, match=f"port {http.port} is already taken"):
            http.start()

    assert not http.pid_file.exists()


def test_early_exit_fails_with_exit_code_and_log_tail(tmp_path: Path):
    crashing = CrashingServer(home=tmp_path / "crash")

    with pytest.raises(services.ServiceError) as failure:
        crashing.start()

    message = str(failure.value)
    assert message.startswith("http.server exited with 3 during startup")
    assert "bad config line 3" in message  # the log tail
    assert crashing.running() is False


def test_every_port_is_below_the_ephemeral_range():
    # The kernel hands these ports to outgoing connections (32768-60999 by default): a
    # server port there can be taken by any client socket on a busy CI machine.
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ranges.read_text().split()[0]) if ranges.exists() else 32768
    ports = [services.SERVICES[name]().port for name in ("moto", "kinesis", "kafka")]
    ports += [services.PG_PORT, services.MYSQL_PORT, services.KAFKA_CONTROLLER_PORT]
    assert max(ports) < low, (ports, low)


def test_the_kafka_brokers_jars_are_cached_beside_the_pinned_jars(monkeypatch, tmp_path):
    monkeypatch.setenv("SLUICEWAY_CACHE", str(tmp_path))
    lib = services.Kafka().lib
    assert lib == tmp_path / "kafka-broker" / services.KAFKA_VERSION / "lib"
