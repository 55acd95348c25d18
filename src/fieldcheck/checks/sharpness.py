"""How wide the sharpest edges of a photo are, where the photo is sharpest: the blur measure.

A sharp photo has edges one or two pixels wide wherever something is in focus; a defocused photo
has no narrow edge anywhere, and a shaken one has none across the direction of the shake (edges
along it stay sharp). So the measure looks for the narrowest edges in each of four directions,
tile by tile, at a working size where a shelf's price labels can still be read (1600 px on the
long side):

1. The sensor noise is estimated (Immerkaer's operator, on the quietest tiles): noise is not
   detail, so edges must stand well clear of it to count.
2. Edge points are found (strongest gradient across the edge); at each, the edge's contrast over
   a few pixels divided by its steepest one-pixel step is its width in pixels (a step edge is 1,
   a Gaussian blur of sigma s about 2.5 s, a shake of n pixels across the edge about n).
3. For each tile and each of the four directions, the 10th percentile of the widths: the tile's
   sharpest edges in that direction. The tile's width is its worst direction (so a shake, which
   leaves one direction sharp, still counts).
4. The photo's width is that of its third sharpest tile: a sharp shelf in front of a soft
   background is sharp; one or two lucky tiles are not enough.

Pure numpy and OpenCV on one greyscale image; about 4 bytes a pixel of extra memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fieldcheck.checks.imaging import cv2

WORKING_LONG_SIDE = 1600
TILES = 8  # an 8 x 8 grid
SHARPEST_TILE = 3  # the photo is as sharp as its third sharpest tile
EDGE_PERCENTILE = 10.0
MIN_EDGES = 20  # edges of one direction in one tile before its width means anything
MIN_DIRECTIONS = 3  # directions with enough edges before a tile counts
REACH = 4  # pixels either side of an edge point over which its contrast is taken
MIN_CONTRAST = 25.0  # grey levels across an edge, and at least NOISE_CONTRAST noise deviations
NOISE_CONTRAST = 6.0
MAX_POINTS = 400_000  # edge candidates kept (a fixed sample beyond that)

# (dy, dx) of one step across an edge, for gradient directions of 0, 45, 90 and 135 degrees.
_STEPS = np.array([(0, 1), (1, 1), (1, 0), (1, -1)], dtype=np.intp)
_STEP_LENGTH = np.array([1.0, np.sqrt(2.0), 1.0, np.sqrt(2.0)], dtype=np.float32)
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclass(frozen=True)
class Sharpness:
    edge_width: float | None  # px at the working size; None when no tile has enough edges
    tiles: int  # tiles with enough edges to be measured
    noise: float  # estimated noise deviation, grey levels


def noise_deviation(gray: np.ndarray) -> float:
    """The sensor noise's standard deviation (Immerkaer 1996), from the quietest tenth of tiles."""
    response = np.abs(cv2.filter2D(gray, cv2.CV_32F, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT))
    height, width = response.shape
    rows, cols = max(1, height // TILES), max(1, width // TILES)
    means = cv2.resize(response[: rows * TILES, : cols * TILES], (TILES, TILES), interpolation=cv2.INTER_AREA)
    return float(np.percentile(means, 10)) * float(np.sqrt(np.pi / 2)) / 6.0


def measure(gray: np.ndarray) -> Sharpness:
    noise = noise_deviation(gray)
    image = gray.astype(np.float32)
    height, width = image.shape
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    magnitude = cv2.magnitude(gx, gy)
    candidates = magnitude > max(6.0 * noise, 4.0)
    margin = REACH + 1
    candidates[:margin, :] = candidates[-margin:, :] = False
    candidates[:, :margin] = candidates[:, -margin:] = False
    ys, xs = np.nonzero(candidates)
    if len(ys) > MAX_POINTS:
        keep = np.random.default_rng(0).choice(len(ys), MAX_POINTS, replace=False)
        ys, xs = ys[keep], xs[keep]
    angle = np.degrees(np.arctan2(gy[ys, xs], gx[ys, xs])) % 180.0
    direction = (((angle + 22.5) // 45.0).astype(np.intp)) % 4
    del gx, gy
    dy, dx = _STEPS[direction, 0], _STEPS[direction, 1]
    here = magnitude[ys, xs]
    peak = (here >= magnitude[ys + dy, xs + dx]) & (here >= magnitude[ys - dy, xs - dx])
    ys, xs, direction, dy, dx = ys[peak], xs[peak], direction[peak], dy[peak], dx[peak]
    centre = image[ys, xs]
    contrast = np.abs(image[ys + REACH * dy, xs + REACH * dx] - image[ys - REACH * dy, xs - REACH * dx])
    step = np.maximum(np.abs(image[ys + dy, xs + dx] - centre), np.abs(centre - image[ys - dy, xs - dx]))
    clear = contrast > max(NOISE_CONTRAST * noise, MIN_CONTRAST)
    widths = contrast[clear] / np.maximum(step[clear], 1e-3) * _STEP_LENGTH[direction[clear]]
    tile = (ys[clear] * TILES // height) * TILES + (xs[clear] * TILES // width)
    groups = tile * 4 + direction[clear]
    tile_widths = _tile_widths(groups, widths)
    if len(tile_widths) < SHARPEST_TILE:
        return Sharpness(None, len(tile_widths), round(noise, 2))
    return Sharpness(float(np.sort(tile_widths)[SHARPEST_TILE - 1]), len(tile_widths), round(noise, 2))


def _tile_widths(groups: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Each measurable tile's width: the worst of its directions' sharpest edges."""
    if not len(groups):
        return np.empty(0)
    order = np.argsort(groups, kind="stable")
    groups, widths = groups[order], widths[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(groups)]
    per_tile: dict[int, list[float]] = {}
    for start, end in zip(starts, ends, strict=True):
        if end - start >= MIN_EDGES:
            value = float(np.percentile(widths[start:end], EDGE_PERCENTILE))
            per_tile.setdefault(int(groups[start]) // 4, []).append(value)
    return np.array([max(values) for values in per_tile.values() if len(values) >= MIN_DIRECTIONS])
