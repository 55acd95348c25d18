"""Reading untrusted image bytes safely: real type, header, EXIF, and decodes at reduced size.

Nothing here decodes pixels before the pixel count read from the header has passed the gate, and
OpenCV's own limit (OPENCV_IO_MAX_IMAGE_PIXELS) is set before cv2 is first imported.

Memory is bounded whatever the file: each decode holds at most MAX_DECODED_BYTES of pixels (a
JPEG is decoded at 1/2, 1/4 or 1/8 when needed; a PNG or a progressive JPEG, which cannot be, is
refused above the pixels that fit), and a process decodes at most a few images at a time
(`decoding()`, `limit_concurrent_decodes`).
"""

from __future__ import annotations

import io
import math
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# The gate and OpenCV agree on the largest image we will decode (about 100 megapixels).
MAX_PIXELS = 100_000_000
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

import cv2  # noqa: E402  (after the limit above)
import numpy as np  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

from fieldcheck.checks.exif import TAG_ORIENTATION, exif_fields  # noqa: E402

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
cv2.setNumThreads(1)  # jobs run in parallel already; one photo, one core

# The pixels one decode may hold (colour: 3 bytes each): 64 MiB is a 21 MP colour image.
MAX_DECODED_BYTES = 64 * 1024 * 1024
COLOUR_BYTES = 3
# HEIC/HEIF (iPhones' default): decoded by libheif (pillow-heif) at full size only, so it has its
# own gate: an iPhone's 24 MP photo fits (73 MB of RGB while it is turned into grey).
HEIC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
HEIC_MAX_PIXELS = 25_000_000
HEIF_TOP_BOXES = frozenset({b"ftyp", b"meta", b"mdat", b"free", b"skip", b"uuid", b"moov", b"idat", b"styp"})
# Formats decoded at full size only: a PNG, and a progressive JPEG (libjpeg keeps all its DCT
# coefficients while decoding, about 3 bytes a pixel, whatever the reduction asked for).
FULL_SIZE_MAX_PIXELS = MAX_DECODED_BYTES // COLOUR_BYTES
DEFAULT_CONCURRENT_DECODES = 2
_decodes = threading.BoundedSemaphore(DEFAULT_CONCURRENT_DECODES)


def limit_concurrent_decodes(count: int) -> None:
    """How many images this process may hold decoded at once (set at start, before any decode)."""
    global _decodes
    _decodes = threading.BoundedSemaphore(count)


@contextmanager
def decoding() -> Iterator[None]:
    """Hold one of the process's decode slots while full-size pixels exist."""
    slots = _decodes
    with slots:
        yield


# A few bytes of padding after the end of an image are common; an appended archive is not.
FOREIGN_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive",
    b"%PDF": "a PDF document",
    b"Rar!": "a RAR archive",
    b"MZ": "a Windows program",
    b"\x7fELF": "a Linux program",
    b"<?xml": "an XML document",
    b"<svg": "an SVG document",
}
# Markup anywhere after an image: what a browser might run if the file were ever taken for a page.
MARKUP = (b"<html", b"<!doctype", b"<script", b"<body", b"<iframe", b"<?php", b"<svg", b"<object")


def sniff_type(data: bytes) -> str:
    """The real type from the first bytes, whatever the file name or the declared type say."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in HEIC_BRANDS:
            return "heic"
        if brand in (b"avif", b"avis"):
            return "avif"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith((b"<svg", b"<?xml", b"<!DOCTYPE svg")):
        return "svg"
    if not data:
        return "empty"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown"
    return "text"


@dataclass(frozen=True)
class Structure:
    complete: bool
    problem: str | None = None


def png_structure(data: bytes) -> Structure:
    """Walk the PNG chunks: every chunk whole, IEND last, nothing after it."""
    position = 8
    while position + 12 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            return Structure(False, "the file ends in the middle of the image (truncated)")
        if kind == b"IEND":
            trailer = data[end:]
            if trailer:
                what = _foreign(trailer) or f"{len(trailer)} bytes of other data"
                return Structure(False, f"{what} is hidden after the end of the image")
            return Structure(True)
        position = end
    return Structure(False, "the file ends before the image does (truncated)")


def heic_structure(data: bytes) -> Structure:
    """Walk the top-level ISO-BMFF boxes: ftyp first, each box whole, a meta box, nothing after."""
    position, seen = 0, list[bytes]()
    while position < len(data):
        if position + 8 > len(data):
            return Structure(False, "the file ends in the middle of a box (truncated)")
        (size,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if seen and not _box_name(kind):  # not a box: something appended after the image
            what = _foreign(data[position:]) or f"{len(data) - position} bytes of other data"
            return Structure(False, f"{what} is hidden after the end of the image")
        header = 8
        if size == 1:
            if position + 16 > len(data):
                return Structure(False, "the file ends in the middle of a box (truncated)")
            (size,) = struct.unpack(">Q", data[position + 8 : position + 16])
            header = 16
        elif size == 0:  # the last box runs to the end of the file
            size = len(data) - position
        if size < header:
            if not seen:
                return Structure(False, "the file's first box is malformed")
            what = _foreign(data[position:]) or f"{len(data) - position} bytes of other data"
            return Structure(False, f"{what} is hidden after the end of the image")
        if position + size > len(data):
            if seen and kind not in HEIF_TOP_BOXES:  # not a box: something appended
                what = _foreign(data[position:]) or f"{len(data) - position} bytes of other data"
                return Structure(False, f"{what} is hidden after the end of the image")
            return Structure(False, "the file ends in the middle of the image (truncated)")
        if not seen and kind != b"ftyp":
            return Structure(False, "the file does not start as a HEIF image does")
        seen.append(kind)
        position += size
    if b"meta" not in seen:
        return Structure(False, "the file has no image description (meta box)")
    return Structure(True)


def _box_name(kind: bytes) -> bool:
    """A box type is four printable characters (ftyp, meta, mdat, ...)."""
    return len(kind) == 4 and all(32 <= c < 127 for c in kind)


def read_heic_header(data: bytes) -> Header:
    """Size and EXIF from the HEIF container only (libheif parses it; no pixel is decoded here).

    The size is the primary image's as shown: libheif applies the container's rotation and
    mirroring when it decodes, so the EXIF orientation (informative only in HEIF) is not applied
    again: the orientation is 1.
    """
    import pillow_heif

    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    width, height = heif.size
    exif: dict[str, Any] = {}
    problem = None
    raw = heif.info.get("exif")
    if raw:
        try:
            parsed = Image.Exif()
            parsed.load(raw[6:] if raw.startswith(b"Exif\x00\x00") else raw)
            exif = exif_fields(parsed)
        except Exception as exc:  # a garbage EXIF block: treated as no EXIF, and said so
            problem = f"the photo's EXIF block is unreadable ({type(exc).__name__})"
    return Header(width=width, height=height, orientation=1, exif=exif, exif_problem=problem)


def decode_heic(data: bytes, *, color: bool) -> np.ndarray | None:
    """The primary image at full size (libheif decodes nothing smaller), grey or BGR."""
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        if heif.size[0] * heif.size[1] > HEIC_MAX_PIXELS:
            return None
        rgb = np.asarray(heif)
    except (ValueError, RuntimeError, OSError):
        return None
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        return None
    code = (
        (cv2.COLOR_RGBA2BGR if color else cv2.COLOR_RGBA2GRAY)
        if rgb.shape[2] == 4
        else (cv2.COLOR_RGB2BGR if color else cv2.COLOR_RGB2GRAY)
    )
    return cv2.cvtColor(rgb, code)


SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def is_progressive(data: bytes) -> bool:
    """A progressive JPEG (SOF2, SOF6, SOF10, SOF14): decoded only at full size."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return False
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        if marker in SOF_MARKERS:
            return marker in (0xC2, 0xC6, 0xCA, 0xCE)
        if marker == 0xDA:
            return False
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return False


def declared_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) as the header declares them, parsed by hand: nothing else is read first."""
    if kind == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if kind != "jpeg":
        return None
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        if marker == 0xDA:
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return None


def first_scan_offset(data: bytes) -> int | None:
    """Where the first scan (SOS) starts, found by walking the header segments from the start."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xDA:
            return position
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return None


def jpeg_structure(data: bytes) -> Structure:
    """The image data must end with an end-of-image marker; what follows must not be a file.

    The end marker is searched from the end of the file and must come after the first scan
    (a thumbnail inside the EXIF block has its own end marker, earlier).
    """
    first_scan = first_scan_offset(data)
    if first_scan is None:
        return Structure(False, "the file has no image data")
    end = data.rfind(b"\xff\xd9")
    if end < first_scan:
        return Structure(False, "the file ends in the middle of the image (truncated)")
    what = _foreign(data[end + 2 :])
    if what:
        return Structure(False, f"{what} is hidden after the end of the image")
    return Structure(True)


def _foreign(trailer: bytes) -> str | None:
    """What a file appended after an image is, if it is one (phones append their own metadata)."""
    stripped = trailer.lstrip(b"\x00\xff\r\n ")
    for signature, what in FOREIGN_SIGNATURES.items():
        if stripped.startswith(signature) or (signature == b"PK\x03\x04" and signature in trailer):
            return what
    lowered = trailer.lower()
    if any(tag in lowered for tag in MARKUP):
        return "a web page or script"
    return None


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    orientation: int
    exif: dict[str, Any]
    exif_problem: str | None

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) as the photo is meant to be seen (EXIF orientation 5-8 swap them)."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)


def read_header(data: bytes) -> Header:
    """Size and EXIF from the header only: no pixel is decoded here."""
    with warnings.catch_warnings(record=True) as caught, Image.open(io.BytesIO(data)) as image:
        warnings.simplefilter("always")
        width, height = image.size
        exif: dict[str, Any] = {}
        problem = None
        orientation = 1
        try:
            raw = image.getexif()
            orientation = int(raw.get(TAG_ORIENTATION, 1) or 1)
            if orientation not in range(1, 9):
                orientation = 1
            exif = exif_fields(raw)
        except Exception as exc:  # a garbage EXIF block: treated as no EXIF, and said so
            problem = f"the photo's EXIF block is unreadable ({type(exc).__name__})"
        if problem is None and any("EXIF" in str(w.message) for w in caught):
            problem = "the photo's EXIF block is damaged; what could be read was kept"
    return Header(width=width, height=height, orientation=orientation, exif=exif, exif_problem=problem)


REDUCED_GRAY = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
REDUCED_COLOR = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def reduction_for(long_side: int, target: int) -> int:
    """The strongest JPEG decode reduction (1/2, 1/4, 1/8) that still gives `target` pixels."""
    for factor in (8, 4, 2):
        if long_side / factor >= target:
            return factor
    return 1


def decoded_bytes(width: int, height: int, factor: int, channels: int) -> int:
    return math.ceil(width / factor) * math.ceil(height / factor) * channels


def reduction_within_budget(
    kind: str, width: int, height: int, *, target: int, channels: int, progressive: bool = False
) -> int | None:
    """The decode reduction for `target` pixels on the long side, stronger if the budget asks
    for it; None when no reduction fits (a PNG or a progressive JPEG over the gate)."""
    if kind == "heic":
        return 1 if width * height <= HEIC_MAX_PIXELS else None
    reducible = kind == "jpeg" and not progressive
    factor = reduction_for(max(width, height), target) if reducible else 1
    while decoded_bytes(width, height, factor, channels) > MAX_DECODED_BYTES:
        if not reducible or factor == 8:
            return None
        factor *= 2
    return factor


def decode(data: bytes, *, factor: int, color: bool) -> np.ndarray | None:
    if sniff_type(data) == "heic":
        return decode_heic(data, color=color) if factor == 1 else None
    flags = (REDUCED_COLOR if color else REDUCED_GRAY)[factor] | cv2.IMREAD_IGNORE_ORIENTATION
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, flags)
    except cv2.error:
        return None
    return image if image is not None and image.size else None


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply the EXIF orientation (1-8) to decoded pixels."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.flip(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE), 1)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE), 1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    if abs(scale - 1) < 1e-6:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Area averaging for strong reductions; for the last small step, linear is as good and faster.
    interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


__all__ = ["Image", "UnidentifiedImageError", "cv2"]
