"""Jobs that exist only in tests: their effects are lines in a file, easy to count."""

from __future__ import annotations

from pathlib import Path

from fieldcheck.jobs import JobContext, job


@job("tests.append_line")
def append_line(ctx: JobContext, path: str, text: str) -> None:
    ctx.claim()  # the file is outside the transaction: claim first, so a repeat never writes
    with Path(path).open("a") as handle:
        handle.write(f"{text}\n")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
