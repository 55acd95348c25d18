"""What clients and reviewers see of a photo: a thumbnail and a client-safe copy.

Both are re-encoded from decoded pixels, so nothing of the original file survives: no EXIF (no
GPS, no maker notes, no embedded thumbnail), no ICC profile, no trailing data. The client-safe
copy also has bystanders' faces blurred (OpenCV's Haar cascade for frontal faces).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from fieldcheck.checks import imaging
from fieldcheck.checks.imaging import cv2

THUMBNAIL_LONG_SIDE = 320
SAFE_LONG_SIDE = 1600  # enough for an audit, not a full-resolution original
JPEG_QUALITY = 85
# Faces are searched on a copy this size; smaller faces are too small to identify anyone anyway.
FACE_SEARCH_LONG_SIDE = 640
FACE_MIN_SIZE = 24
FACE_MARGIN = 0.25  # blur a little beyond the detected box: hair, ears, chin


@dataclass(frozen=True)
class Derivatives:
    thumbnail: bytes
    safe: bytes
    faces_blurred: int


# Frontal faces, and profiles facing either way (the profile cascade knows one side: the
# mirrored image gives the other). Any detection is blurred: privacy errs on the side of blur.
# Profiles need more agreeing neighbours: that cascade fires on foliage and flowers otherwise.
CASCADES = {"haarcascade_frontalface_alt2.xml": 5, "haarcascade_profileface.xml": 6}
SCALE_STEP = 1.15


# A CascadeClassifier is not safe to share between threads (concurrent detections trip its
# internal assertions): each worker thread loads its own, once.
_detectors = threading.local()


def _detector(name: str) -> cv2.CascadeClassifier:
    loaded: dict[str, cv2.CascadeClassifier] = _detectors.__dict__.setdefault("by_name", {})
    if name not in loaded:
        path = cv2.data.haarcascades + name  # type: ignore[attr-defined]
        detector = cv2.CascadeClassifier(path)
        if detector.empty():
            raise RuntimeError(f"the face cascade {name} is missing from OpenCV ({path})")
        loaded[name] = detector
    return loaded[name]


def detect_faces(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in the coordinates of `image`."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    scale = min(1.0, FACE_SEARCH_LONG_SIDE / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    small = cv2.equalizeHist(small)
    mirrored = cv2.flip(small, 1)
    width = small.shape[1]
    boxes: list[tuple[int, int, int, int]] = []
    for name, neighbours in CASCADES.items():
        detector = _detector(name)
        for flipped, source in ((False, small), (True, mirrored)):
            for x, y, w, h in detector.detectMultiScale(
                source,
                scaleFactor=SCALE_STEP,
                minNeighbors=neighbours,
                minSize=(FACE_MIN_SIZE, FACE_MIN_SIZE),
            ):
                x = width - x - w if flipped else x
                boxes.append((round(x / scale), round(y / scale), round(w / scale), round(h / scale)))
    return boxes


def blur_faces(image: np.ndarray, faces: list[tuple[int, int, int, int]]) -> np.ndarray:
    out = image.copy()
    height, width = out.shape[:2]
    for x, y, w, h in faces:
        mx, my = int(w * FACE_MARGIN), int(h * FACE_MARGIN)
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(width, x + w + mx), min(height, y + h + my)
        region = out[y0:y1, x0:x1]
        if region.size == 0:
            continue
        # Pixelate, then smooth: unrecoverable, and still reads as "a face was here".
        small = cv2.resize(
            region, (max(1, (x1 - x0) // 16), max(1, (y1 - y0) // 16)), interpolation=cv2.INTER_AREA
        )
        blocky = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        kernel = max(3, ((min(x1 - x0, y1 - y0) // 8) | 1))
        out[y0:y1, x0:x1] = cv2.GaussianBlur(blocky, (kernel, kernel), 0)
    return out


def encode_jpeg(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(
        ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_OPTIMIZE, 1]
    )
    if not ok:
        raise ValueError("the image could not be encoded")
    return bytes(buffer)


def make_derivatives(
    data: bytes,
    *,
    width: int,
    height: int,
    orientation: int,
    detected_type: str,
    progressive: bool = False,
    decoded: np.ndarray | None = None,
) -> Derivatives:
    """Decode once at the size the client-safe copy needs (or take `decoded`: colour pixels in the
    stored orientation, as the check kept them of a HEIC); the thumbnail comes from that."""
    if decoded is not None:
        return _from_pixels(decoded, orientation)
    factor = imaging.reduction_within_budget(
        detected_type,
        width,
        height,
        target=SAFE_LONG_SIDE,
        channels=imaging.COLOUR_BYTES,
        progressive=progressive,
    )
    if factor is None:
        raise ValueError("no decode of this image fits the memory budget")
    with imaging.decoding():
        image = imaging.decode(data, factor=factor, color=True)
        if image is None:
            raise ValueError("the image could not be decoded")
        return _from_pixels(image, orientation)


def _from_pixels(image: np.ndarray, orientation: int) -> Derivatives:
    if max(image.shape[:2]) > SAFE_LONG_SIDE:  # smaller first: the rotation then costs little
        image = imaging.resize_long_side(image, SAFE_LONG_SIDE)
    image = imaging.upright(image, orientation)
    faces = detect_faces(image)
    safe = blur_faces(image, faces)
    thumbnail = (
        imaging.resize_long_side(safe, THUMBNAIL_LONG_SIDE)
        if max(safe.shape[:2]) > THUMBNAIL_LONG_SIDE
        else safe
    )
    return Derivatives(thumbnail=encode_jpeg(thumbnail), safe=encode_jpeg(safe), faces_blurred=len(faces))
