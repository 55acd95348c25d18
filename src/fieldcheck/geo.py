"""Geodesy for discovery and location checks: pure functions, degrees in, metres out.

- `search_box` gives the latitude band and the longitude range(s) that contain every point
  within a radius on the WGS84 ellipsoid, splitting at the antimeridian and opening to every
  longitude when the circle reaches a pole.
- `distance_m` (one pair: the location checks) is geopy's geodesic; `distances_m` (one point to
  many: discovery's ranking) is the same algorithm, Karney's, in PROJ's C geodesic library through
  pyproj, over arrays, since geopy measures one pair at a time. Both are exact to nanometres at any
  distance, nearly antipodal points included; pyproj replaced our numpy Vincenty (with a geopy
  fallback) there, three times as fast on a page of discovery (42 against 120 us for 62 points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from geopy.distance import geodesic
from pyproj import Geod

WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
# Smallest meridian radius of curvature (at the equator): a metre spans at most this many
# degrees of latitude anywhere, so boxes built with it never miss a point.
MIN_MERIDIAN_RADIUS_M = WGS84_A * (1 - (2 * WGS84_F - WGS84_F**2))
SAFETY = 1.001
# Latitude bands of 0.05 degrees (about 5.5 km) keyed as integers: the leading column of the
# discovery index, so a radius search reads a few narrow slices of the index.
BAND_PER_DEGREE = 20
_WGS84 = Geod(ellps="WGS84")


def lat_band(lat: float) -> int:
    return math.floor(lat * BAND_PER_DEGREE)


@dataclass(frozen=True)
class SearchBox:
    lat_min: float
    lat_max: float
    lon_ranges: tuple[tuple[float, float], ...]

    @property
    def bands(self) -> list[int]:
        return list(range(lat_band(self.lat_min), lat_band(self.lat_max) + 1))


def search_box(lat: float, lon: float, radius_m: float) -> SearchBox:
    dlat = math.degrees(radius_m / MIN_MERIDIAN_RADIUS_M) * SAFETY
    lat_min, lat_max = lat - dlat, lat + dlat
    if lat_min <= -90 or lat_max >= 90:
        # The circle holds a pole: every longitude is near enough.
        return SearchBox(max(lat_min, -90.0), min(lat_max, 90.0), ((-180.0, 180.0),))
    extreme = math.radians(max(abs(lat_min), abs(lat_max)))
    # Parallel radius at the latitude nearest the pole: the smallest in the box.
    parallel_m = (
        WGS84_A * math.cos(extreme) / math.sqrt(1 - (2 * WGS84_F - WGS84_F**2) * math.sin(extreme) ** 2)
    )
    dlon = math.degrees(radius_m / parallel_m) * SAFETY
    if dlon >= 180:
        return SearchBox(lat_min, lat_max, ((-180.0, 180.0),))
    west, east = lon - dlon, lon + dlon
    if west < -180:
        return SearchBox(lat_min, lat_max, ((west + 360, 180.0), (-180.0, east)))
    if east > 180:
        return SearchBox(lat_min, lat_max, ((west, 180.0), (-180.0, east - 360)))
    return SearchBox(lat_min, lat_max, ((west, east),))


def local_scale_m(lat: float) -> tuple[float, float]:
    """Metres per degree of latitude and of longitude at this latitude (WGS84)."""
    phi = math.radians(lat)
    e2 = 2 * WGS84_F - WGS84_F**2
    w = math.sqrt(1 - e2 * math.sin(phi) ** 2)
    meridian = WGS84_A * (1 - e2) / w**3
    normal = WGS84_A / w
    return math.radians(meridian), math.radians(normal * math.cos(phi))


def distances_m(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Geodesic distances on WGS84 from one point to many, in metres."""
    lats = np.asarray(lats, dtype=np.float64)
    lons = np.asarray(lons, dtype=np.float64)
    _, _, distances = _WGS84.inv(
        np.full_like(lons, lon), np.full_like(lats, lat), lons, lats, return_back_azimuth=False
    )
    return np.asarray(distances, dtype=np.float64)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(geodesic((lat1, lon1), (lat2, lon2)).meters)
