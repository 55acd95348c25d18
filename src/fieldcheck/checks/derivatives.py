"""What clients and reviewers see of a photo: a thumbnail and a client-safe copy.

Both are re-encoded from decoded pixels, so nothing of the original file survives: no EXIF (no
GPS, no maker notes, no embedded thumbnail), no ICC profile, no trailing data. The client-safe
copy also has bystanders' faces blurred, found by YuNet (OpenCV Model Zoo, MIT; run by OpenCV's
own `FaceDetectorYN`, the model file ships in this package: checks/yunet/SOURCE.md).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fieldcheck.checks import imaging
from fieldcheck.checks.imaging import cv2

THUMBNAIL_LONG_SIDE = 320
SAFE_LONG_SIDE = 1600  # enough for an audit, not a full-resolution original
JPEG_QUALITY = 85
FACE_MARGIN = 0.25  # blur a little beyond the detected box: hair, ears, chin

# YuNet finds faces of about 10 to 300 px in the image it is given. Faces are searched on a copy
# 640 px on the long side (a face 10 px there is about 25 px in the client-safe copy: too small
# to identify anyone), and again on one 160 px on the long side for faces too close to the
# camera for the first look (300 px at 640 is 75 px at 160).
FACE_SEARCH_LONG_SIDES = (640, 160)
# Calibrated on one half of a labelled set of real photos and measured on the other
# (eval/faces/README.md): privacy errs on the side of blur, so the threshold is low.
FACE_SCORE_THRESHOLD = 0.6
FACE_NMS_THRESHOLD = 0.3
FACE_MIN_SEARCH_SIDE = 16  # a look at an image thinner than this finds nothing (faces are >= 10 px)

MODEL = Path(__file__).with_name("yunet") / "face_detection_yunet_2023mar.onnx"
MODEL_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


@dataclass(frozen=True)
class Derivatives:
    thumbnail: bytes
    safe: bytes
    faces_blurred: int


def _model_bytes() -> np.ndarray:
    cached: np.ndarray | None = globals().get("_MODEL_BYTES")
    if cached is None:
        data = MODEL.read_bytes()
        if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
            raise RuntimeError(f"the face detection model {MODEL} is not the one fieldcheck ships")
        cached = np.frombuffer(data, dtype=np.uint8)
        globals()["_MODEL_BYTES"] = cached
    return cached


# A detector holds its network, shaped for one input size (reshaping it costs as much as a
# detection): each worker thread keeps one per size it meets (phone photos come in a few shapes).
_detectors = threading.local()
DETECTORS_PER_THREAD = 8


def _detector(size: tuple[int, int], score: float) -> cv2.FaceDetectorYN:
    kept: dict[tuple[int, int, float], cv2.FaceDetectorYN] = _detectors.__dict__.setdefault("kept", {})
    key = (*size, score)
    detector = kept.pop(key, None)
    if detector is None:
        detector = cv2.FaceDetectorYN.create(
            "onnx", _model_bytes(), np.empty(0, dtype=np.uint8), size, score, FACE_NMS_THRESHOLD, 5000
        )
        if len(kept) >= DETECTORS_PER_THREAD:
            del kept[next(iter(kept))]  # the one used longest ago
    kept[key] = detector  # most recently used last
    return detector


def _shrink(image: np.ndarray, long_side: int) -> np.ndarray:
    """`image` at `long_side`: area averaging by a whole factor (its fast path), then linear."""
    height, width = image.shape[:2]
    step = max(height, width) // long_side
    if step >= 2:
        size = (max(1, width // step), max(1, height // step))  # a 3000 x 2 px image stays an image
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return imaging.resize_long_side(image, long_side) if max(image.shape[:2]) > long_side else image


def face_candidates(
    image: np.ndarray,
    *,
    score: float = FACE_SCORE_THRESHOLD,
    long_sides: tuple[int, ...] = FACE_SEARCH_LONG_SIDES,
) -> list[tuple[int, int, int, int, float]]:
    """Face boxes (x, y, w, h) in the coordinates of `image` (colour or grey, upright) with
    YuNet's score, each look at `long_sides` in turn (largest first)."""
    source = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
    height, width = source.shape[:2]
    boxes: list[tuple[int, int, int, int, float]] = []
    for index, long_side in enumerate(long_sides):
        if index and max(source.shape[:2]) < 2 * long_side:
            break  # a small image: the last look saw it at (nearly) this size already
        source = _shrink(source, long_side)
        if min(source.shape[:2]) < FACE_MIN_SEARCH_SIDE:
            break  # no face fits (and the network answers noise for so thin an input)
        scale_x, scale_y = width / source.shape[1], height / source.shape[0]
        _, found = _detector((source.shape[1], source.shape[0]), score).detect(source)
        for row in () if found is None else found:
            if not np.isfinite(row[:4]).all():
                continue
            x0, y0 = max(0.0, row[0] * scale_x), max(0.0, row[1] * scale_y)
            x1, y1 = min(width, (row[0] + row[2]) * scale_x), min(height, (row[1] + row[3]) * scale_y)
            if x1 > x0 and y1 > y0:
                boxes.append((round(x0), round(y0), round(x1 - x0), round(y1 - y0), float(row[14])))
    return boxes


def distinct_faces(found: list[tuple[int, int, int, int, float]]) -> list[tuple[int, int, int, int]]:
    """One box per face: a face both looks found is counted once (non-maximum suppression)."""
    boxes = [[x, y, w, h] for x, y, w, h, _ in found]
    if len(boxes) < 2:
        return [(x, y, w, h) for x, y, w, h in boxes]
    kept = cv2.dnn.NMSBoxes(boxes, [score for *_, score in found], 0.0, FACE_NMS_THRESHOLD)
    return [(x, y, w, h) for x, y, w, h in (boxes[int(i)] for i in np.array(kept).reshape(-1))]


def detect_faces(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in the coordinates of `image` (colour or grey, upright), one a face."""
    return distinct_faces(face_candidates(image))


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
        out[y0:y1, x0:x1] = cv2.stackBlur(blocky, (kernel, kernel))
    return out


def encode_jpeg(image: np.ndarray) -> bytes:
    # Without optimised Huffman tables: files about 2 % larger, encoded in half the time.
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
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
    found = face_candidates(image)
    # Every box found is blurred (where two looks disagree a little, both are); faces are counted once.
    safe = blur_faces(image, [(x, y, w, h) for x, y, w, h, _ in found])
    faces = distinct_faces(found)
    thumbnail = _shrink(safe, THUMBNAIL_LONG_SIDE)
    return Derivatives(thumbnail=encode_jpeg(thumbnail), safe=encode_jpeg(safe), faces_blurred=len(faces))
