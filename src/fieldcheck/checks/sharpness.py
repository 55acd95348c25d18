"""How wide the sharpest edges of a photo are, where the photo is sharpest: the blur measure.

A sharp photo has edges one or two pixels wide wherever something is in focus; a defocused photo
has no narrow edge anywhere, and a shaken one has none across the direction of the shake (edges
along it stay sharp). So the measure looks for the narrowest edges in each of four directions,
tile by tile, at a working size where a shelf's price labels can still be read (1600 px on the
long side):

1. The sensor noise is estimated (Immerkaer's operator, on the quietest tiles): noise is not
   detail, so edges must stand well clear of it to count.
2. Edge points are found (the strongest gradient across the edge); at each, the edge's contrast over
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
MAX_POINTS = 120_000  # edge candidates kept (evenly spread beyond that)

# (dy, dx) of one step across an edge, for gradient directions of 0, 45, 90 and 135 degrees.
_STEPS = np.array([(0, 1), (1, 1), (1, 0), (1, -1)], dtype=np.intp)
_STEP_LENGTH = np.array([1.0, np.sqrt(2.0), 1.0, np.sqrt(2.0)], dtype=np.float32)
_NOISE_KERNEL_1D = np.array([1, -2, 1], dtype=np.float32)  # its outer product is Immerkaer's 3 x 3 operator


@dataclass(frozen=True)
class Sharpness:
    edge_width: float | None  # px at the working size; None when no tile has enough edges
    tiles: int  # tiles with enough edges to be measured
    noise: float  # estimated noise deviation, grey levels


def noise_deviation(gray: np.ndarray) -> float:
    """The sensor noise's standard deviation (Immerkaer 1996), from the quietest tenth of tiles."""
    response = cv2.convertScaleAbs(
        cv2.sepFilter2D(gray, cv2.CV_16S, _NOISE_KERNEL_1D, _NOISE_KERNEL_1D, borderType=cv2.BORDER_REFLECT)
    )  # exact integers, saturating at 255 (only the quiet tiles count)
    height, width = response.shape
    rows, cols = max(1, height // TILES), max(1, width // TILES)
    means = cv2.resize(response[: rows * TILES, : cols * TILES], (TILES, TILES), interpolation=cv2.INTER_AREA)
    return float(np.percentile(means, 10)) * float(np.sqrt(np.pi / 2)) / 6.0


def measure(gray: np.ndarray) -> Sharpness:
    noise = noise_deviation(gray)
    height, width = gray.shape
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)  # grey levels a pixel
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    magnitude = cv2.magnitude(gx, gy)
    # Edge candidates (an evenly spread sample of them when there are very many), kept where the
    # gradient is strongest across the edge (non-maximum suppression). Pixels are addressed by
    # their flat index.
    margin = REACH + 1
    inner = magnitude[margin : height - margin, margin : width - margin]
    found = np.flatnonzero(inner > max(6.0 * noise, 4.0))
    if len(found) > MAX_POINTS:
        found = found[:: -(-len(found) // MAX_POINTS)]
    at = found + (found // inner.shape[1]) * (2 * margin) + (margin * width + margin)  # index in the image
    direction = _direction(gx.ravel()[at], gy.ravel()[at])
    del gx, gy
    offset = _STEPS[direction, 0] * width + _STEPS[direction, 1]
    flat_magnitude = magnitude.ravel()
    here = flat_magnitude[at]
    peak = (here >= flat_magnitude[at + offset]) & (here >= flat_magnitude[at - offset])
    del magnitude, flat_magnitude
    at, direction, offset = at[peak], direction[peak], offset[peak]
    image = gray.ravel().astype(np.int16)
    centre = image[at]
    contrast = np.abs(image[at + REACH * offset] - image[at - REACH * offset])
    step = np.maximum(np.abs(image[at + offset] - centre), np.abs(centre - image[at - offset]))
    clear = contrast > max(NOISE_CONTRAST * noise, MIN_CONTRAST)
    direction = direction[clear]
    widths = contrast[clear] / np.maximum(step[clear], 1).astype(np.float32) * _STEP_LENGTH[direction]
    ys, xs = np.divmod(at[clear], width)
    tile = (ys * TILES // height) * TILES + (xs * TILES // width)
    tile_widths = _tile_widths(tile * 4 + direction, widths)
    if len(tile_widths) < SHARPEST_TILE:
        return Sharpness(None, len(tile_widths), round(noise, 2))
    return Sharpness(float(np.sort(tile_widths)[SHARPEST_TILE - 1]), len(tile_widths), round(noise, 2))


_TAN_22_5 = np.float32(np.tan(np.radians(22.5)))


def _direction(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """The gradient's direction in four bins: 0, 45, 90 and 135 degrees (index into _STEPS)."""
    ax, ay = np.abs(gx), np.abs(gy)
    diagonal = np.where(gx * gy > 0, 1, 3)
    return np.where(ay <= _TAN_22_5 * ax, 0, np.where(ax <= _TAN_22_5 * ay, 2, diagonal)).astype(np.intp)


def _tile_widths(groups: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Each measurable tile's width: the worst of its directions' sharpest edges.

    One sort of (group, width) does every group's percentile at once.
    """
    if not len(groups):
        return np.empty(0)
    keys = np.sort(groups.astype(np.float64) * 1e4 + np.minimum(widths, 9999.0))
    ordered_groups = (keys // 1e4).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, ordered_groups[1:] != ordered_groups[:-1]])
    counts = np.diff(np.r_[starts, len(keys)])
    enough = counts >= MIN_EDGES
    starts, counts = starts[enough], counts[enough]
    # np.percentile's default (linear) at EDGE_PERCENTILE, within each group
    position = (counts - 1) * (EDGE_PERCENTILE / 100.0)
    low = np.floor(position).astype(np.int64)
    fraction = position - low
    values = keys - ordered_groups * 1e4
    percentile = (
        values[starts + low] * (1 - fraction) + values[starts + np.minimum(low + 1, counts - 1)] * fraction
    )
    tiles = ordered_groups[starts] // 4
    _, first, per_tile = np.unique(tiles, return_index=True, return_counts=True)
    worst = np.maximum.reduceat(percentile, first) if len(first) else np.empty(0)
    return worst[per_tile >= MIN_DIRECTIONS]
