"""The CSV and ZIP exports, written as streams: rows and photos pass through, one at a time.

Pure of the database: they take results (an iterable of ResultRow), a way to read stored
objects, and a progress callback; the job around them does the rest.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO

from fieldcheck.assignments.models import AssignmentStatus
from fieldcheck.checks.models import Outcome
from fieldcheck.results.views import ResultRow
from fieldcheck.spreadsheet import safe_cell

Progress = Callable[[int, str], None]  # (items done, stage in words)
PhotoLinks = Callable[[ResultRow], list[str]]

CSV_HEADER = (
    "store_ref",
    "store_name",
    "address",
    "status",
    "decision",
    "decided_by",
    "reasons",
    "visited_at",
    "distance_m",
    "photo_count",
    "photo_links",
    "checks_passed",
    "checks_warned",
    "checks_failed",
    "assignment_id",
    "submitted_at",
)
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def csv_record(row: ResultRow, links: list[str]) -> list[object]:
    counts = row.check_counts
    return [
        safe_cell(v)
        for v in (
            row.store.external_ref or "",
            row.store.name,
            row.store.address or "",
            row.status,
            row.decision.outcome if row.decision else "",
            row.decision.decided_by if row.decision else "",
            row.reasons_text,
            _iso(row.visited_at),
            row.distance_m if row.distance_m is not None else "",
            len(row.photos),
            " ".join(links),
            counts[Outcome.passed],
            counts[Outcome.warn],
            counts[Outcome.fail],
            str(row.assignment_id),
            _iso(row.submitted_at),
        )
    ]


def write_csv(out: IO[str], rows: Iterable[ResultRow], links: PhotoLinks, progress: Progress) -> int:
    """UTF-8 CSV with a header (and a byte-order mark, so spreadsheets read it as UTF-8)."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    written = 0
    for row in rows:
        writer.writerow(csv_record(row, links(row)))
        written += 1
        progress(written, f"rows {written}")
    return written


def store_folder(row: ResultRow) -> str:
    label = row.store.external_ref or row.store.name or str(row.store.id)
    cleaned = SAFE_NAME.sub("-", label).strip("-.")[:60]
    return cleaned or str(row.store.id)[:8]


def photo_paths(row: ResultRow) -> list[str]:
    """Where each approved photo of the row sits in the ZIP: by store ref, then assignment."""
    if row.status != AssignmentStatus.approved.value:
        return []
    folder = store_folder(row)
    short = str(row.assignment_id)[:8]
    return [f"photos/{folder}/{folder}_{short}_{n}.jpg" for n, _ in enumerate(row.photos, start=1)]


def write_zip(
    out: IO[bytes],
    rows: Callable[[], Iterable[ResultRow]],
    read_object: Callable[[str], bytes],
    progress: Progress,
) -> tuple[int, int]:
    """results.csv, then every approved client-safe photo; returns (rows, photos).

    `rows` is called twice (a pass for the CSV, one for the photos), so nothing is kept between
    them. Photos are stored, not deflated: JPEG does not compress further. The output may be a
    pipe: zipfile then writes data descriptors instead of seeking back.
    """
    written_rows = photos = 0
    done = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        info = zipfile.ZipInfo("results.csv", date_time=_zip_time())
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")

            written_rows = write_csv(text, rows(), photo_paths, progress)
            text.flush()
            text.detach()
        done = written_rows
        for row in rows():
            for path, photo in zip(photo_paths(row), row.photos, strict=False):
                if photo.safe_key is None:
                    continue
                data = read_object(photo.safe_key)
                entry = zipfile.ZipInfo(path, date_time=_zip_time(row.visited_at))
                archive.writestr(entry, data, compress_type=zipfile.ZIP_STORED)
                photos += 1
                done += 1
                progress(done, f"photos {photos}")
    return written_rows, photos


def _zip_time(at: datetime | None = None) -> tuple[int, int, int, int, int, int]:
    when = at or datetime.now(UTC)
    year = max(1980, when.year)
    return (year, when.month, when.day, when.hour, when.minute, when.second)
