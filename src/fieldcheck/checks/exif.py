"""What the EXIF block tells the checks: capture time (and its offset), camera, GPS position."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import Image

EXIF_IFD = 0x8769
GPS_IFD = 0x8825
TAG_ORIENTATION = 0x0112
TAG_DATETIME_ORIGINAL = 0x9003
TAG_OFFSET_TIME_ORIGINAL = 0x9011


def exif_fields(raw: Image.Exif) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    camera = raw.get_ifd(EXIF_IFD) if EXIF_IFD in raw else {}
    taken = camera.get(TAG_DATETIME_ORIGINAL) or raw.get(0x0132)
    if isinstance(taken, str) and taken.strip():
        fields["taken_local"] = taken.strip()
        offset = camera.get(TAG_OFFSET_TIME_ORIGINAL)
        if isinstance(offset, str) and offset.strip():
            fields["taken_offset"] = offset.strip()
    for tag, name in ((0x010F, "make"), (0x0110, "model")):
        value = raw.get(tag)
        if isinstance(value, str) and value.strip():
            fields[name] = value.strip().strip("\x00")[:60]
    gps = raw.get_ifd(GPS_IFD) if GPS_IFD in raw else {}
    position = _gps_position(gps)
    if position is not None:
        fields["gps_lat"], fields["gps_lon"] = position
    return fields


def _gps_position(gps: dict[int, Any]) -> tuple[float, float] | None:
    try:
        lat = _degrees(gps[2]) * (-1 if str(gps.get(1, "N")).upper().startswith("S") else 1)
        lon = _degrees(gps[4]) * (-1 if str(gps.get(3, "E")).upper().startswith("W") else 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def _degrees(value: Any) -> float:
    d, m, s = (float(part) for part in value)
    return d + m / 60 + s / 3600


def exif_time_utc(exif: dict[str, Any], device_offset: timedelta | None) -> datetime | None:
    """DateTimeOriginal in UTC: its own offset if the camera wrote one, else the phone's."""
    local = exif.get("taken_local")
    if not local:
        return None
    try:
        naive = datetime.strptime(local[:19], "%Y:%m:%d %H:%M:%S")  # noqa: DTZ007 - EXIF has no offset; added below
    except ValueError:
        return None
    written = exif.get("taken_offset")
    offset = _parse_offset(written) if isinstance(written, str) else device_offset
    if offset is None:
        return None
    return naive.replace(tzinfo=timezone(offset)).astimezone(UTC)


def _parse_offset(text: str) -> timedelta | None:
    try:
        sign = -1 if text.startswith("-") else 1
        hours, minutes = text.lstrip("+-").split(":")[:2]
        return sign * timedelta(hours=int(hours), minutes=int(minutes))
    except (ValueError, AttributeError):
        return None
