from __future__ import annotations

from fieldcheck.jobs import JobContext, job
from fieldcheck.photos.service import DELETE_OBJECT_JOB


@job(DELETE_OBJECT_JOB)
def delete_object(ctx: JobContext, key: str) -> None:
    ctx.runtime.storage.delete(key)
