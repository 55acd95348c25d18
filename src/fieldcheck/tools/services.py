"""What the benchmarks and the tests share to run real processes beside real services: free
loopback ports, waiting for a listener, removing a run's queues, and signed-in accounts made
straight in the database."""

from __future__ import annotations

import secrets
import socket
import time
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fieldcheck.auth.models import Role
    from fieldcheck.runtime import Runtime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def delete_queues(broker_url: str, prefix: str) -> None:
    """Every queue of the jobs under `prefix` (with its delayed and dead-letter queues)."""
    from fieldcheck.jobs import JOBS

    if broker_url.startswith("amqp"):
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        channel = connection.channel()
        for queue in {spec.queue for spec in JOBS.values()}:
            base = f"{prefix}.{queue}"
            for name in (base, f"{base}.DQ", f"{base}.XQ"):
                channel.queue_delete(name)
        connection.close()
    elif broker_url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(broker_url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def account_token(
    runtime: Runtime, role: Role, *, label: str, organization_id: uuid.UUID | None = None
) -> str:
    """A new account of `role` (e-mail `<label>-<role>-<random>@example.com`) and its bearer token."""
    from fieldcheck.auth.service import create_user, issue_token

    with runtime.db.transaction() as session:
        user = create_user(
            session,
            runtime.passwords,
            email=f"{label}-{role.value}-{secrets.token_hex(5)}@example.com",
            password=secrets.token_urlsafe(16),
            role=role,
            display_name=f"{label.capitalize()} {role.value}",
            organization_id=organization_id,
        )
        return issue_token(runtime.tokens, user)
