"""Reference match: does a photo show the same scene as a reference photo (the shelf asked for)?

Local features (OpenCV's ORB: FAST corners with rotated BRIEF binary descriptors, fast to find
and to match, free of patents) are found on an upright greyscale copy of FEATURE_LONG_SIDE px; the photo's descriptors are matched to each
reference's (two nearest neighbours, Lowe's ratio test), and the matched points must agree on one
perspective transform (a RANSAC homography): the inliers, and their share of the matches, are the
measure. Two photos of one shelf taken a step apart, out of focus or shaken still share dozens of
inliers; unrelated photos share a handful that agree on no transform.

A reference's features are computed once (`features`, then `Features.to_bytes` to store them),
so comparing a new photo with five references costs one extraction and five matchings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from fieldcheck.checks.imaging import cv2

# Which features these are: stored features of another kind (AKAZE, before 2026-12-05) are not
# compared with, as if the reference had none, until `fieldcheck checks refeature` recomputes them.
METHOD = "orb-400-300"
FEATURE_LONG_SIDE = 400  # ORB: 2.5 ms a photo here (AKAZE took 9.5 ms and missed more same-scene pairs)
MAX_FEATURES = 300  # the strongest; 500 cost twice the matching time and told scenes apart no better
DESCRIPTOR_BYTES = 32
ORB_EDGE = 15  # px from the border where corners are still looked for
RATIO = 0.75  # Lowe's ratio test: the best match clearly better than the second
RANSAC_PIXELS = 6.0  # reprojection error at FEATURE_LONG_SIDE
MIN_MATCHES = 8
# Same scene: at least this many inliers, and this share of the ratio-tested matches. Calibrated on
# the calibration photos (eval/calibration/blur-photos.md, none of them in ../shared/photos): 630
# pairs of the 36 originals (the Kwentar triplet 106: sharp, defocused, shaken, the same scene) and
# 616 pairs of an original with its variants (blurred, noisy, re-encoded, cropped, tilted): same-
# scene pairs that match at all share 25 inliers or more (median 254), unrelated pairs at most 15
# (one pair; all others under 10). The line is the middle of that gap.
MATCH_MIN_INLIERS = 20
MATCH_MIN_SHARE = 0.30
MIN_SIDE = 32  # a reference smaller than this has nothing to match


@dataclass(frozen=True, eq=False)
class Features:
    points: np.ndarray  # float32 (n, 2), (x, y) at the feature size
    descriptors: np.ndarray  # uint8 (n, DESCRIPTOR_BYTES): ORB's binary descriptors
    size: tuple[int, int]  # (width, height) of the feature copy
    method: str = METHOD

    @property
    def current(self) -> bool:
        """Features of the kind this version finds (others cannot be compared with them)."""
        return self.method == METHOD

    def __len__(self) -> int:
        return len(self.points)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            points=self.points,
            descriptors=self.descriptors,
            size=np.array(self.size, dtype=np.int32),
            method=np.array(self.method),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            size = stored["size"]
            method = str(stored["method"]) if "method" in stored.files else "akaze-400-500"
            return cls(stored["points"], stored["descriptors"], (int(size[0]), int(size[1])), method)


@dataclass(frozen=True)
class Match:
    matches: int  # ratio-tested matches
    inliers: int  # of them, those agreeing on one homography
    corners: list[tuple[float, float]] | None  # the photo's outline in the reference, 0..1

    @property
    def share(self) -> float:
        return self.inliers / self.matches if self.matches else 0.0

    @property
    def same_scene(self) -> bool:
        return self.inliers >= MATCH_MIN_INLIERS and self.share >= MATCH_MIN_SHARE


def features(gray: np.ndarray) -> Features:
    """Features of an upright greyscale image (any size: it is brought to FEATURE_LONG_SIDE)."""
    height, width = gray.shape[:2]
    if min(height, width) < MIN_SIDE:
        return _none((width, height))
    scale = FEATURE_LONG_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    detector = cv2.ORB.create(nfeatures=MAX_FEATURES, edgeThreshold=ORB_EDGE)
    keypoints, descriptors = detector.detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return _none((gray.shape[1], gray.shape[0]))
    if len(keypoints) > MAX_FEATURES:
        strongest = np.argsort([-k.response for k in keypoints], kind="stable")[:MAX_FEATURES]
        keypoints = [keypoints[i] for i in strongest]
        descriptors = descriptors[strongest]
    points = np.asarray(cv2.KeyPoint.convert(keypoints), dtype=np.float32).reshape(-1, 2)
    return Features(points, np.ascontiguousarray(descriptors, dtype=np.uint8), (gray.shape[1], gray.shape[0]))


def _none(size: tuple[int, int]) -> Features:
    return Features(np.empty((0, 2), np.float32), np.empty((0, DESCRIPTOR_BYTES), np.uint8), size)


def match(photo: Features, reference: Features) -> Match:
    """How well the photo matches one reference (features of another kind match nothing)."""
    if len(photo) < 2 or len(reference) < 2 or photo.method != reference.method:
        return Match(0, 0, None)
    nearest, distance, second = _two_nearest(photo.descriptors, reference.descriptors)
    # The photo's points in their order, as knnMatch lists them: RANSAC's result depends on it.
    good = np.flatnonzero(distance < RATIO * second)
    if len(good) < MIN_MATCHES:
        return Match(len(good), 0, None)
    source = photo.points[good].reshape(-1, 1, 2)
    target = reference.points[nearest[good]].reshape(-1, 1, 2)
    homography, mask = cv2.findHomography(source, target, cv2.RANSAC, RANSAC_PIXELS)
    if homography is None or mask is None:
        return Match(len(good), 0, None)
    inliers = int(mask.sum())
    return Match(len(good), inliers, _outline(homography, photo.size, reference.size))


def _two_nearest(query: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query descriptor: the nearest train descriptor's index, its Hamming distance, and the
    second nearest's distance; what OpenCV's brute-force knnMatch(k=2) finds (the first of equally
    near ones is the nearest), without making a Python object of each match."""
    # Row i: the i-th 64 bits of every descriptor (ORB's are 32 bytes), counted 64 bits at a time.
    query_words = np.ascontiguousarray(query).view(np.uint64).T.copy()
    train_words = np.ascontiguousarray(train).view(np.uint64).T.copy()
    distances = np.zeros((len(query), len(train)), np.uint16)
    for query_word, train_word in zip(query_words, train_words, strict=True):
        distances += np.bitwise_count(query_word[:, None] ^ train_word[None, :])
    nearest = distances.argmin(axis=1)
    rows = np.arange(len(query))
    distance = distances[rows, nearest]
    distances[rows, nearest] = np.iinfo(np.uint16).max
    return nearest, distance, distances.min(axis=1)


def best_match(photo: Features, references: list[Features]) -> tuple[int, Match] | None:
    """The reference the photo matches best (most inliers), with its index; None without any."""
    scored = [(index, match(photo, reference)) for index, reference in enumerate(references)]
    if not scored:
        return None
    return max(scored, key=lambda item: (item[1].same_scene, item[1].inliers))


def _outline(
    homography: np.ndarray, photo_size: tuple[int, int], reference_size: tuple[int, int]
) -> list[tuple[float, float]] | None:
    """The photo's corners where they fall in the reference, as shares of its width and height."""
    width, height = photo_size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32).reshape(-1, 1, 2)
    try:
        placed = cv2.perspectiveTransform(corners, homography).reshape(-1, 2)
    except cv2.error:
        return None
    if not np.all(np.isfinite(placed)):
        return None
    ref_width, ref_height = reference_size
    return [(round(float(x) / ref_width, 4), round(float(y) / ref_height, 4)) for x, y in placed]
