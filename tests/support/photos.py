"""Images for tests, made in code (the real phone photos are read from ../shared/photos)."""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fieldcheck.checks.imaging import cv2

PHOTOS_DIR = Path(
    os.environ.get("FIELDCHECK_TEST_PHOTOS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "photos"
)


def real(name: str) -> bytes:
    """A real phone photo from ../shared/photos (or FIELDCHECK_TEST_PHOTOS_DIR): missing is a failure."""
    path = PHOTOS_DIR / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: the tests read real photos from {PHOTOS_DIR} (FIELDCHECK_TEST_PHOTOS_DIR)"
        )
    return path.read_bytes()


WORDS = ("MILK", "YOGHURT", "BIO", "1L", "FRESH", "LAIT", "NATURE", "0%", "FAT", "VANILLE", "DAIRY", "500g")


def scene(width: int = 1600, height: int = 1200, seed: int = 1) -> np.ndarray:
    """A synthetic shelf as a phone sees it: coloured packs with lines of printed text, held a
    little askew, through a lens (a slight blur) and a sensor (a little noise).

    (Perfectly aligned, perfectly regular bars over the whole frame would be what a screen's
    pixel grid looks like, not a shelf.)
    """
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 200, dtype=np.uint8)
    image[:] = np.linspace(120, 220, width, dtype=np.uint8)[None, :, None]
    for _ in range(60):
        x, y = int(rng.integers(0, width - 120)), int(rng.integers(0, height - 160))
        w, h = int(rng.integers(60, 200)), int(rng.integers(80, 240))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
        line = y + 50
        while line < y + h - 8:
            text = " ".join(str(word) for word in rng.choice(WORDS, 3))
            scale = float(rng.uniform(0.35, 0.6))
            cv2.putText(
                image, text, (x + 6, line), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA
            )
            line += int(rng.integers(12, 22))
        cv2.putText(image, "MILK", (x + 5, y + 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), float(rng.uniform(-2, 2)), 1.04)
    image = cv2.warpAffine(
        image, turn, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    image = cv2.GaussianBlur(image, (0, 0), 0.6)
    noisy = image + rng.normal(0, 3, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(buffer)


def png(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", image)
    assert ok
    return bytes(buffer)


# Bad inputs ---------------------------------------------------------------------------------
def jpeg_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes whose header says width x height."""
    sof = (
        b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    return (
        b"\xff\xd8"
        + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + sof
        + b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
        + b"\x00" * 200
        + b"\xff\xd9"
    )


@functools.cache
def png_of_zeros(width: int, height: int) -> bytes:
    """A valid grey PNG of zeros, compressed to a small file: a decompression bomb (made once)."""
    row = b"\x00" + b"\x00" * width
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row) for _ in range(height)]
    data = b"".join(chunks) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def png_zip_polyglot() -> bytes:
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.txt", "not a photo")
    return png(scene(400, 300)) + archive.getvalue()


def garbage_exif_jpeg() -> bytes:
    data = jpeg(scene(1200, 900))
    garbage = b"Exif\x00\x00" + b"II*\x00" + b"\xff\xff\xff\x7f" + bytes(range(256)) * 4
    app1 = b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage
    return data[:2] + app1 + data[2:]


def other_formats() -> dict[str, bytes]:
    image = Image.fromarray(scene(300, 200)[:, :, ::-1])
    formats = {}
    for name in ("TIFF", "GIF", "BMP", "WEBP"):
        out = io.BytesIO()
        image.save(out, format=name)
        formats[name.lower()] = out.getvalue()
    formats["svg"] = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000"><rect width="10" height="10"/></svg>'
    )
    formats["text"] = b"this is not a photo, just text renamed .jpg\n" * 20
    formats["zip"] = b"PK\x03\x04" + b"\x00" * 100
    return formats


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@functools.cache
def heic(
    width: int = 1600, height: int = 1200, seed: int = 3, orientation: int = 1, make: str = "Apple"
) -> bytes:
    """A HEIC photo as an iPhone writes one (HEVC in a HEIF container, EXIF inside)."""
    import pillow_heif

    image = Image.fromarray(np.ascontiguousarray(scene(width=width, height=height, seed=seed)[:, :, ::-1]))
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = "iPhone 15"
    if orientation != 1:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=70, exif=exif.tobytes())
    return buffer.getvalue()


def heic_claiming(width: int, height: int) -> bytes:
    """A small real HEIC whose image-size property (ispe) claims width x height."""
    data = bytearray(heic(320, 240))
    at = data.find(b"ispe")
    assert at > 0
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(data)
