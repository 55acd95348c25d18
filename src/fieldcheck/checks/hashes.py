"""Perceptual hashes for near duplicates: the same picture re-encoded, resized, slightly cropped,
brightened, darkened or saved upright. Compared with every earlier photo in checks/duplicates.py.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from fieldcheck.checks import imaging
from fieldcheck.checks.imaging import cv2

# Near duplicates: 64-bit perceptual hashes (DCT) differing by at most this many bits are the
# same picture (re-encoded, resized, slightly cropped or brightened); unrelated photos differ by
# about 32 bits, two different shots of one product by 20 or more.
PHASH_MAX_DISTANCE = 10
DHASH_MAX_DISTANCE = 14
# Same picture cropped by 4% on each side still correlates at 0.86 or more; unrelated photos of
# ../shared/photos at 0.66 at most (and their hashes are 20 or more bits apart anyway).
FINGERPRINT_MIN_CORRELATION = 0.80
# Images with almost no detail (black, uniform) all look alike to a hash: never compared. The line is
# the standard deviation of the 16x16 fingerprint, in grey levels: a black frame measures under 1,
# a copy of a photo made eight times darker 3 to 8. Calibrated on 556 files of the blur
# calibration set (its first 30 originals and their variants): at 6 it found 91.5 % of the copies, at 3
# 93.8 % with no more false pairs (none appear down to 1; 3 keeps a margin for dim, flat scenes).
MIN_DETAIL_FOR_HASHING = 3.0


# Version of the perceptual hashes stored in photo_hashes: 2 = taken on the picture upright
# (`fieldcheck checks rehash` brings older rows to it).
HASH_VERSION = 2


def picture_hashes(gray: np.ndarray, orientation: int) -> tuple[int, int, str, float]:
    """(pHash, dHash, 16x16 fingerprint, detail) of a greyscale copy as stored, taken on the
    picture as it is meant to be seen: a copy an editor saved upright is the same picture as the
    turned original.

    (Equalizing the grey levels first would also catch washed-out copies, 97.6 % of the calibration
    set's copies against 95.3 %, but it makes two shots of one shelf from the same spot, one of them
    out of focus, look like one picture: refusing honest work is worse than missing a copy.)
    """
    base = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)  # one area pass; the rest is small
    base = imaging.upright(base, orientation)
    small = cv2.resize(base, (16, 16), interpolation=cv2.INTER_AREA)
    return phash(base), dhash(base), base64.b64encode(small.tobytes()).decode(), float(small.std())


def phash(gray: np.ndarray) -> int:
    """64-bit DCT hash: the 8x8 lowest frequencies of a 32x32 copy, each above or below their median."""
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    median = float(np.median(low[1:]))  # the DC term says only how bright the photo is
    return _bits_to_int(low > median)


def dhash(gray: np.ndarray) -> int:
    """64-bit gradient hash: is each pixel of a 9x8 copy brighter than its right neighbour."""
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return _bits_to_int((small[:, 1:] > small[:, :-1]).flatten())


def _bits_to_int(bits: np.ndarray) -> int:
    # Stored in a signed 64-bit column.
    return int.from_bytes(np.packbits(bits.astype(np.uint8)).tobytes(), "big", signed=True)


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


def fingerprint_correlation(a: str, b: str) -> float:
    x = np.frombuffer(base64.b64decode(a), dtype=np.uint8).astype(np.float32)
    y = np.frombuffer(base64.b64decode(b), dtype=np.uint8).astype(np.float32)
    x -= x.mean()
    y -= y.mean()
    denominator = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denominator) if denominator else 0.0


def same_picture(a: Any, b: Any) -> tuple[bool, int]:
    """Near-duplicate test: close perceptual hashes, confirmed by a second hash and a second look."""
    pa, pb = _get(a, "phash"), _get(b, "phash")
    if pa is None or pb is None:
        return False, 64
    distance = hamming(pa, pb)
    if distance > PHASH_MAX_DISTANCE:
        return False, distance
    if hamming(_get(a, "dhash"), _get(b, "dhash")) > DHASH_MAX_DISTANCE:
        return False, distance
    fa, fb = _get(a, "fingerprint"), _get(b, "fingerprint")
    return bool(fa and fb and fingerprint_correlation(fa, fb) >= FINGERPRINT_MIN_CORRELATION), distance


def _get(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name)
