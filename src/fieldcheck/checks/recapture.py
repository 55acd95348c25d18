"""Screen recapture: how far narrow periodic peaks (moire, refresh bands) stand out of a photo's
spectrum. The threshold and the explanation are in checks/photo.py."""

from __future__ import annotations

import functools

import numpy as np

from fieldcheck.checks.imaging import cv2

RECAPTURE_WINDOW = 256


def recapture_score(gray: np.ndarray) -> float:
    """How far the sharpest narrow peak of the spectrum climbs over its own neighbourhood.

    A photo of a screen carries the screen's pixel grid as moire, and rolling shutters catch
    refresh bands: both are point-like peaks in the 2-D spectrum. Natural scenes, even blurred
    ones, have a spectrum that changes smoothly from one frequency to the next. The score is the
    height of the two highest peaks over the mean of the ring of frequencies around each, in
    units of the typical (median absolute) deviation.
    """
    height, width = gray.shape
    size = min(RECAPTURE_WINDOW, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    window = gray[top : top + size, left : left + size].astype(np.float32)
    window -= float(window.mean())
    window *= _hann(size)
    spectrum = cv2.dft(window, flags=cv2.DFT_COMPLEX_OUTPUT)
    magnitude = np.fft.fftshift(cv2.magnitude(spectrum[..., 0], spectrum[..., 1]))
    logs = cv2.log(magnitude + 1.0)
    outer = cv2.boxFilter(logs, -1, (11, 11), normalize=False, borderType=cv2.BORDER_REFLECT)
    inner = cv2.boxFilter(logs, -1, (5, 5), normalize=False, borderType=cv2.BORDER_REFLECT)
    excess = (logs - (outer - inner) * (1 / (121 - 25)))[_band_mask(size)]
    # The typical deviation, from every 4th frequency of the band: as robust, a quarter of the work.
    sample = excess[::4]
    spread = float(np.median(np.abs(sample - np.median(sample)))) or 1e-6
    return float(np.partition(excess, -2)[-2:].mean() / spread)


@functools.cache
def _hann(size: int) -> np.ndarray:
    return np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)


@functools.cache
def _band_mask(size: int) -> np.ndarray:
    centre = size // 2
    yy, xx = np.indices((size, size))
    radius = np.hypot(yy - centre, xx - centre)
    return (radius > size * 0.03) & (radius < size * 0.48)  # not the scene's broad shapes
