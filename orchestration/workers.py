"""Celery workers of the prod profile: a run's steps go through the broker (RabbitMQ) to any number of
worker processes, on any machines that reach the broker, PostgreSQL and S3.

    python -m orchestration.workers --name a        # one worker, one step at a time
    celery -A orchestration.workers worker -Q dagster -n a@%h -c 1   # the same through the Celery CLI

Both read ``SPOTON_CELERY_BROKER`` / ``SPOTON_CELERY_BACKEND`` and, for the steps they run, the
settings of the prod profile (``SPOTON_DEPLOYMENT=prod``, ``SPOTON_S3_*``, ``SPOTON_PG_*``, ``DAGSTER_HOME``).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Mapping

from celery import Celery
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

BROKER_ENV, BACKEND_ENV = "SPOTON_CELERY_BROKER", "SPOTON_CELERY_BACKEND"
QUEUE = "dagster"  # dagster-celery's queue; separate deployments sharing one RabbitMQ use separate vhosts

# A step's message is acknowledged only once the step has run, and a worker that dies in the middle of
# it hands the message back, so the broker gives the step to another worker instead of losing it.
# One step reserved per worker process: a long step never holds back another that an idle worker could take.
CELERY_OPTIONS = {"task_acks_late": True, "task_reject_on_worker_lost": True, "worker_prefetch_multiplier": 1,
                  "broker_connection_retry_on_startup": True}


@dataclass(frozen=True)
class CelerySettings:
    """Where steps are queued and where their results come back (``rpc://``: through the broker)."""

    broker: str = "pyamqp://guest:guest@127.0.0.1:5672//"
    backend: str = "rpc://"

    def __post_init__(self):
        if not self.broker.startswith(("amqp://", "pyamqp://", "amqps://", "redis://", "rediss://")):
            raise ValueError(f"{BROKER_ENV} must be an amqp:// (RabbitMQ) or redis:// URL, "
                             f"like {CelerySettings.broker!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "CelerySettings":
        return cls(broker=env.get(BROKER_ENV) or cls.broker, backend=env.get(BACKEND_ENV) or cls.backend)

    def executor_config(self, env: Mapping[str, str] = os.environ) -> dict:
        """``celery_executor`` config; URLs set in the environment stay references to it, so a broker
        password never lands in a run's stored config."""
        return {"broker": {"env": BROKER_ENV} if env.get(BROKER_ENV) else self.broker,
                "backend": {"env": BACKEND_ENV} if env.get(BACKEND_ENV) else self.backend,
                "config_source": CELERY_OPTIONS}


def worker_app(settings: CelerySettings) -> Celery:
    """The Celery app a worker runs: the same broker, backend and options as the executor's, plus its step task."""
    app = make_app(CeleryExecutor.for_cli(broker=settings.broker, backend=settings.backend,
                                          config_source=CELERY_OPTIONS).app_args())
    create_task(app)
    return app


app = worker_app(CelerySettings.from_env())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default=f"worker-{os.getpid()}", help="worker name (steps are logged with it)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="steps run at once (one process each; each uses SPOTON_ORT_THREADS inference threads)")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    os.environ.setdefault("SPOTON_ORT_THREADS", "1")
    app.worker_main(["worker", "-n", f"{args.name}@%h", "-Q", QUEUE, "-c", str(args.concurrency),
                     "-l", args.loglevel, "--without-gossip", "--without-mingle"])


if __name__ == "__main__":
    main()
