"""When PostGIS discovery's first statement surely holds the page, and how far a second one reads.

The rows of the first statement come as their KNN (sphere) distances, nearest first; a geodesic on
WGS84 is within SPHERE_LOW..SPHERE_HIGH of it. The page is complete when no task not read can come
before the page's last row, nor tie with it (ties go by task id)."""

from __future__ import annotations

from fieldcheck.discovery.service import SPHERE_HIGH, SPHERE_LOW, NearbyQuery, _page_bound


def query(radius_m: float = 5000.0, limit: int = 3) -> NearbyQuery:
    return NearbyQuery(48.85, 2.35, radius_m, limit)


def test_a_clear_gap_after_the_page_means_the_rows_hold_it() -> None:
    # The page ends by 101 m at most; a task not read is 200 * 0.99 m away at least.
    assert _page_bound(query(), [10.0, 50.0, 100.0, 150.0, 200.0]) is None


def test_a_tie_at_the_cut_reads_on_up_to_the_page_end() -> None:
    # One position for the page's last row and every row after it (a store's tasks): a task not
    # read there could be on the page, by its id.
    knn = [10.0, 50.0, 100.0, 100.0, 100.0]
    assert _page_bound(query(), knn) == 100.0 * SPHERE_HIGH


def test_rows_nearer_together_than_the_spheres_margin_read_on() -> None:
    last = 100.0 * SPHERE_HIGH / SPHERE_LOW  # a hair nearer than this could still come first
    assert _page_bound(query(), [10.0, 50.0, 100.0, 101.0, last * 0.999]) == 100.0 * SPHERE_HIGH
    assert _page_bound(query(), [10.0, 50.0, 100.0, 101.0, last * 1.001]) is None


def test_a_page_that_may_end_beyond_the_radius_is_bounded_by_the_radius() -> None:
    # The third row may be 1010 m away, outside a 1000 m radius: every task within the radius
    # counts, and those not read start at 1000 * 0.99 m.
    assert _page_bound(query(radius_m=1000.0), [10.0, 50.0, 1000.0, 1001.0, 1002.0]) == 1000.0
    # ... unless nothing not read can be inside the radius.
    assert _page_bound(query(radius_m=1000.0), [10.0, 50.0, 1000.0, 1001.0, 1020.0]) is None
