"""Geodesic distances and the search box of discovery: pure functions, checked against geopy."""

from __future__ import annotations

import numpy as np
import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldcheck.geo import distances_m, search_box


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-89.9, 89.9),
    lon=st.floats(-180, 180),
    radius=st.floats(10, 50_000),
    bearing=st.floats(0, 360),
    fraction=st.floats(0, 0.999),
)
def test_every_point_inside_the_radius_is_inside_the_search_box(
    lat: float, lon: float, radius: float, bearing: float, fraction: float
) -> None:
    point = geodesic(meters=radius * fraction).destination((lat, lon), bearing)
    box = search_box(lat, lon, radius)
    assert box.lat_min <= point.latitude <= box.lat_max
    assert any(west <= point.longitude <= east for west, east in box.lon_ranges)
    assert min(box.bands) <= int(point.latitude * 20 // 1) <= max(box.bands)


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(-89.99, 89.99),
    lon=st.floats(-180, 180),
    lat2=st.floats(-89.99, 89.99),
    lon2=st.floats(-180, 180),
)
def test_vectorised_distances_match_geopy(lat: float, lon: float, lat2: float, lon2: float) -> None:

    ours = float(distances_m(lat, lon, np.array([lat2]), np.array([lon2]))[0])
    assert ours == pytest.approx(geodesic((lat, lon), (lat2, lon2)).meters, abs=1e-6)
