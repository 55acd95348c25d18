"""Screen recapture: how many parts of a photo hold a narrow periodic peak in their spectrum.

A photo of a screen carries the screen's pixel grid as moire, and rolling shutters catch refresh
bands: both are point-like peaks in the 2-D spectrum. Natural scenes, even blurred ones, have a
spectrum that changes smoothly from one frequency to the next. The threshold and the explanation
are in checks/photo.py."""

from __future__ import annotations

import functools

import numpy as np

from fieldcheck.checks.imaging import cv2

RECAPTURE_WINDOW = 256


@functools.cache
def _hann(size: int) -> np.ndarray:
    return np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)


@functools.cache
def _band_mask(size: int) -> np.ndarray:
    centre = size // 2
    yy, xx = np.indices((size, size))
    radius = np.hypot(yy - centre, xx - centre)
    return (radius > size * 0.03) & (radius < size * 0.48)  # not the scene's broad shapes


# The screen measure: how many parts of the photo carry such a peak. -------------------------
# A photo of a screen carries its moire or refresh bands over the whole region the screen covers,
# so many windows of the photo show a narrow peak; a periodic texture (a fence, blinds) or a
# compression artefact lights up a few. Windows of 256 px on a 1600 px copy, a checkerboard half
# of them when there are more than 8 (12 on a 4:3 photo); the 8x8 JPEG block grid's harmonics are
# left out of the peaks.
WINDOW_PEAK_ABOVE = 6.0


def screen_share(gray: np.ndarray, block_px: float | None = None) -> tuple[float, int]:
    """(share of the windows with a narrow peak above WINDOW_PEAK_ABOVE, windows looked at).

    `block_px`: the period of the JPEG 8x8 block grid in this copy's pixels (None: not a JPEG).
    """
    size = RECAPTURE_WINDOW
    height, width = gray.shape
    if min(height, width) < size:
        return 0.0, 0
    keep = _peak_mask(size, None if block_px is None else round(block_px, 3))
    rows, cols = height // size, width // size
    peaks = [
        window_peak(gray[row * size : (row + 1) * size, col * size : (col + 1) * size], keep)
        for row in range(rows)
        for col in range(cols)
        if not ((row + col) % 2 and rows * cols > 8)
    ]
    return float(np.mean(np.array(peaks) > WINDOW_PEAK_ABOVE)), len(peaks)


def block_period(stored_long_side: int, factor: int, working_long_side: int) -> float:
    """Where a JPEG's 8x8 blocks fall in a copy decoded at 1/`factor` and resized."""
    decoded = stored_long_side / factor
    return 8.0 / factor * working_long_side / decoded


def window_peak(window: np.ndarray, keep: np.ndarray | None = None) -> float:
    """How far the two highest narrow peaks of a square window's spectrum (within `keep`: the band
    without the JPEG block harmonics) climb over the ring of frequencies around each, in typical
    (median absolute) deviations from the band's median."""
    size = window.shape[0]
    values = window.astype(np.float32)
    values -= float(values.mean())
    values *= _hann(size)
    spectrum = cv2.dft(values, flags=cv2.DFT_COMPLEX_OUTPUT)
    logs = cv2.log(np.fft.fftshift(cv2.magnitude(spectrum[..., 0], spectrum[..., 1])) + 1.0)
    outer = cv2.boxFilter(logs, -1, (11, 11), normalize=False, borderType=cv2.BORDER_REFLECT)
    inner = cv2.boxFilter(logs, -1, (5, 5), normalize=False, borderType=cv2.BORDER_REFLECT)
    excess = logs - (outer - inner) * (1 / (121 - 25))
    sample = excess[_band_mask(size)][::4]
    centre = float(np.median(sample))
    spread = float(np.median(np.abs(sample - centre))) or 1e-6
    top = np.partition(excess[_band_mask(size) if keep is None else keep], -2)[-2:]
    return float((top.mean() - centre) / spread)


@functools.cache
def _peak_mask(size: int, block_px: float | None) -> np.ndarray:
    """The band of _band_mask without the JPEG block grid's harmonics (and their aliases)."""
    if not block_px:
        return _band_mask(size)
    band = np.fft.ifftshift(_band_mask(size)).copy()
    step = size / block_px
    positions = {round(k * step) % size for k in range(9)}
    positions |= {(-p) % size for p in positions}
    for a in positions:
        for b in positions:
            for da in (-1, 0, 1):
                for db in (-1, 0, 1):
                    band[(a + da) % size, (b + db) % size] = False
    return np.fft.fftshift(band)
