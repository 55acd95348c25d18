"""The app under uvicorn on a loopback port, for tests that need real connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fieldcheck.settings import Settings
from tests.support.backends import free_port


@contextmanager
def running(settings: Settings) -> Iterator[str]:
    """Serve `settings` until the block ends; yields the base URL (http://127.0.0.1:port)."""
    import uvicorn

    from fieldcheck.app import create_app

    port = free_port()
    live = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(live), host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
