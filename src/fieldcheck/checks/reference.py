"""Reference match: does a photo show the same scene as a reference photo (the shelf asked for)?

Local features (OpenCV's AKAZE: binary descriptors, fast to match, free of patents) are found on
an upright greyscale copy of FEATURE_LONG_SIDE px; the photo's descriptors are matched to each
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

FEATURE_LONG_SIDE = 400  # 8 ms of AKAZE on a phone photo; 640 px cost 30 ms and told scenes apart no better
MAX_FEATURES = 500  # the strongest; more cost matching time and add little
AKAZE_THRESHOLD = 0.001
RATIO = 0.75  # Lowe's ratio test: the best match clearly better than the second
RANSAC_PIXELS = 6.0  # reprojection error at FEATURE_LONG_SIDE
MIN_MATCHES = 8
# Same scene: at least this many inliers, and this share of the ratio-tested matches. Calibrated on
# the Kwentar triplet 106 (sharp, defocused, shaken: 3 same-scene pairs) and the 432 pairs of
# unrelated calibration photos (eval/calibration/blur-photos.md), none of them in ../shared/photos:
# the triplet's pairs share 78 to 146 inliers (95 % or more), unrelated pairs at most 4; the line
# is near four times that, well under the shaken and defocused pairs.
MATCH_MIN_INLIERS = 15
MATCH_MIN_SHARE = 0.30
MIN_SIDE = 32  # a reference smaller than this has nothing to match


@dataclass(frozen=True, eq=False)
class Features:
    points: np.ndarray  # float32 (n, 2), (x, y) at the feature size
    descriptors: np.ndarray  # uint8 (n, 61): AKAZE's binary descriptors
    size: tuple[int, int]  # (width, height) of the feature copy

    def __len__(self) -> int:
        return len(self.points)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, points=self.points, descriptors=self.descriptors, size=np.array(self.size, dtype=np.int32)
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            size = stored["size"]
            return cls(stored["points"], stored["descriptors"], (int(size[0]), int(size[1])))


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
        return Features(np.empty((0, 2), np.float32), np.empty((0, 61), np.uint8), (width, height))
    scale = FEATURE_LONG_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    detector = cv2.AKAZE.create(threshold=AKAZE_THRESHOLD)
    keypoints, descriptors = detector.detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return Features(
            np.empty((0, 2), np.float32), np.empty((0, 61), np.uint8), (gray.shape[1], gray.shape[0])
        )
    if len(keypoints) > MAX_FEATURES:
        strongest = np.argsort([-k.response for k in keypoints], kind="stable")[:MAX_FEATURES]
        keypoints = [keypoints[i] for i in strongest]
        descriptors = descriptors[strongest]
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    return Features(points, np.ascontiguousarray(descriptors, dtype=np.uint8), (gray.shape[1], gray.shape[0]))


def match(photo: Features, reference: Features) -> Match:
    """How well the photo matches one reference."""
    if len(photo) < 2 or len(reference) < 2:
        return Match(0, 0, None)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(photo.descriptors, reference.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_MATCHES:
        return Match(len(good), 0, None)
    source = photo.points[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    target = reference.points[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    homography, mask = cv2.findHomography(source, target, cv2.RANSAC, RANSAC_PIXELS)
    if homography is None or mask is None:
        return Match(len(good), 0, None)
    inliers = int(mask.sum())
    return Match(len(good), inliers, _outline(homography, photo.size, reference.size))


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
