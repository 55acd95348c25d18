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
    outside = _outside(size, None if block_px is None else round(block_px, 3))
    rows, cols = height // size, width // size
    peaks = [
        _window_peak(gray[row * size : (row + 1) * size, col * size : (col + 1) * size], outside)
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
    return _window_peak(window, _outside(size, None) if keep is None else ~keep)


def _window_peak(window: np.ndarray, outside: np.ndarray) -> float:
    """window_peak, the peaks looked for where `outside` (in the centred layout) is False."""
    size = window.shape[0]
    values = window.astype(np.float32)
    values -= float(values.mean())
    values *= _hann(size)
    spectrum = cv2.dft(values, flags=cv2.DFT_COMPLEX_OUTPUT)
    # A real window's spectrum is symmetric: F(-u, -v) is the conjugate of F(u, v), of the same
    # magnitude, so the columns 0..size/2 hold every magnitude; log(1 + magnitude) is taken there,
    # then laid out in full with the zero frequency in the middle (as np.fft.fftshift would).
    half = spectrum[:, : size // 2 + 1]
    logs_half = cv2.magnitude(half[..., 0], half[..., 1], _aligned((size, size // 2 + 1)))
    np.add(logs_half, 1.0, out=logs_half)
    cv2.log(logs_half, logs_half)
    logs = _centred(logs_half)
    # Each frequency's log-magnitude less the mean of the ring around it (the 11x11 square without
    # the 5x5 one).
    outer = cv2.boxFilter(logs, -1, (11, 11), normalize=False, borderType=cv2.BORDER_REFLECT)
    inner = cv2.boxFilter(logs, -1, (5, 5), normalize=False, borderType=cv2.BORDER_REFLECT)
    excess = np.subtract(outer, inner, out=outer)
    excess *= 1 / (121 - 25)
    np.subtract(logs, excess, out=excess)
    sample = excess.take(_band_sample(size))
    centre = _median(sample)
    sample -= centre  # the deviations from the median (their order does not matter)
    spread = _median(np.abs(sample, out=sample)) or 1e-6
    # The two highest where the peaks are looked for: the highest, then the highest of the rest.
    np.copyto(excess, -np.inf, where=outside)
    highest = int(excess.argmax())
    first = excess.flat[highest]
    excess.flat[highest] = -np.inf
    top = (first + excess.max()) / 2
    return float((top - centre) / spread)


@functools.cache
def _band_sample(size: int) -> np.ndarray:
    """Flat indices of every 4th frequency of the band, row by row (excess[_band_mask][::4])."""
    return np.flatnonzero(_band_mask(size))[::4]


@functools.cache
def _outside(size: int, block_px: float | None) -> np.ndarray:
    """Where the peaks are not looked for: outside the band, or on the JPEG block harmonics."""
    return ~_peak_mask(size, block_px)


def _median(values: np.ndarray) -> float:
    """np.median of a float32 sample without NaN (the same number), partly sorting `values` in place
    rather than a copy."""
    middle = values.size // 2
    if values.size % 2:
        values.partition(middle)
        return float(values[middle])
    values.partition((middle - 1, middle))
    return float((values[middle - 1] + values[middle]) / 2)


def _centred(half: np.ndarray) -> np.ndarray:
    """The whole spectrum laid out with the zero frequency at (n/2, n/2), as np.fft.fftshift does,
    from its columns 0..n/2 (`half`, as the DFT lays them out): row y, column x is the frequency
    (y - n/2, x - n/2); those of the columns 1..n/2-1 (horizontal frequencies -n/2+1..-1) are read
    at the opposite frequency (half's columns n/2-1..1, rows mirrored)."""
    n = half.shape[0]
    h = n // 2
    full = np.empty((n, n), np.float32)
    full[:h, h:] = half[h:, :h]
    full[h:, h:] = half[:h, :h]
    full[:h, 0] = half[h:, h]
    full[h:, 0] = half[:h, h]
    full[: h + 1, 1:h] = half[h::-1, h - 1 : 0 : -1]
    full[h + 1 :, 1:h] = half[:h:-1, h - 1 : 0 : -1]
    return full


def _aligned(shape: tuple[int, int]) -> np.ndarray:
    """An empty float32 array starting on a 64-byte boundary. cv2.magnitude computes the first and
    last few values of an output not so aligned by another route, which can differ in the last bit;
    aligned, the measure does not depend on where memory happens to fall."""
    count = shape[0] * shape[1]
    raw = np.empty(count + 16, np.float32)
    start = (-raw.ctypes.data % 64) // 4
    return raw[start : start + count].reshape(shape)


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
