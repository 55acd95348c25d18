from __future__ import annotations

from fieldcheck.jobs import JobContext, job


@job("photos.delete_object")
def delete_object(ctx: JobContext, key: str) -> None:
    ctx.runtime.storage.delete(key)
