"""The HTML report: one self-contained file a store manager opens offline.

Charts are inline SVG drawn here (no script, no tiles, no fonts to fetch); thumbnails are
embedded as data URIs, read from storage while the page is written, so the report streams out
like the other exports.
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from html import escape
from typing import IO

import jinja2
from markupsafe import Markup

from fieldcheck.assignments.models import AssignmentStatus
from fieldcheck.results.views import ResultRow, StoreRef, Summary

THUMBNAILS_PER_STORE = 4
KM_PER_DEGREE = 111.32  # of latitude, and of longitude once squeezed by cos(latitude)
MAX_CHART_GROUPS = 12
NO_REGION = "No address"
POSTAL_CODE = re.compile(r"\b[A-Z]{0,2}[- ]?\d{3,6}(?:[- ]?\d{2,4})?\b")

# Store states on the map and in the cards, with colours readable by most colour-blind readers.
STATE_DONE, STATE_REVIEW, STATE_REJECTED, STATE_OPEN = "done", "in review", "rejected", "not visited yet"
STATE_COLOURS = {
    STATE_DONE: "#1a9641",
    STATE_REVIEW: "#e6a100",
    STATE_REJECTED: "#d7191c",
    STATE_OPEN: "#9e9e9e",
}
PENDING = frozenset(
    {AssignmentStatus.submitted.value, AssignmentStatus.in_review.value, AssignmentStatus.appealed.value}
)


@dataclass
class StoreCard:
    store: StoreRef
    slots: int
    rows: list[ResultRow] = field(default_factory=list)

    @property
    def approved(self) -> int:
        return sum(1 for r in self.rows if r.status == AssignmentStatus.approved.value)

    @property
    def state(self) -> str:
        if self.slots and self.approved >= self.slots:
            return STATE_DONE
        if any(r.status in PENDING for r in self.rows):
            return STATE_REVIEW
        if self.approved:
            return STATE_REVIEW if self.approved < self.slots else STATE_DONE
        if any(r.status == AssignmentStatus.rejected.value for r in self.rows):
            return STATE_REJECTED
        return STATE_OPEN

    @property
    def colour(self) -> str:
        return STATE_COLOURS[self.state]

    @property
    def region(self) -> str:
        return region_of(self.store.address)


def region_of(address: str | None) -> str:
    """The store group of the charts: the address's last part (its town), postal code removed."""
    if not address or not address.strip():
        return NO_REGION
    last = address.split(",")[-1]
    town = POSTAL_CODE.sub("", last).strip(" -")
    return town or last.strip() or NO_REGION


@dataclass(frozen=True)
class GroupFigures:
    name: str
    slots: int
    approved: int
    rejected: int
    pending: int

    @property
    def completion(self) -> float:
        return self.approved / self.slots if self.slots else 0.0

    @property
    def approval_rate(self) -> float | None:
        decided = self.approved + self.rejected
        return self.approved / decided if decided else None


def group_figures(cards: list[StoreCard]) -> list[GroupFigures]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for card in cards:
        t = totals[card.region]
        t[0] += card.slots
        t[1] += card.approved
        t[2] += sum(1 for r in card.rows if r.status == AssignmentStatus.rejected.value)
        t[3] += sum(1 for r in card.rows if r.status in PENDING)
    groups = sorted(
        (GroupFigures(name, *values) for name, values in totals.items()), key=lambda g: (-g.slots, g.name)
    )
    if len(groups) > MAX_CHART_GROUPS:
        kept, rest = groups[: MAX_CHART_GROUPS - 1], groups[MAX_CHART_GROUPS - 1 :]
        kept.append(
            GroupFigures(
                f"{len(rest)} other places",
                sum(g.slots for g in rest),
                sum(g.approved for g in rest),
                sum(g.rejected for g in rest),
                sum(g.pending for g in rest),
            )
        )
        groups = kept
    return groups


def completion_chart(groups: list[GroupFigures]) -> Markup:
    """Horizontal stacked bars per group: approved, in review, rejected, and slots still open."""
    label_w, bar_w, row_h, top = 170, 420, 30, 34
    width = label_w + bar_w + 190
    height = top + row_h * max(1, len(groups)) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="completion-title" class="chart">',
        '<title id="completion-title">Completion and approval by town</title>',
    ]
    legend = [
        ("approved", STATE_COLOURS[STATE_DONE]),
        ("in review", STATE_COLOURS[STATE_REVIEW]),
        ("rejected", STATE_COLOURS[STATE_REJECTED]),
        ("open", "#e0e0e0"),
    ]
    x = label_w
    for name, colour in legend:
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="16" font-size="12">{name}</text>')
        x += 95
    for i, group in enumerate(groups):
        y = top + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" font-size="13" text-anchor="end">'
            f"{escape(_clip(group.name, 24))}</text>"
        )
        slots = max(group.slots, group.approved + group.pending + group.rejected, 1)
        x0 = float(label_w)
        for value, colour in (
            (group.approved, STATE_COLOURS[STATE_DONE]),
            (group.pending, STATE_COLOURS[STATE_REVIEW]),
            (group.rejected, STATE_COLOURS[STATE_REJECTED]),
        ):
            w = bar_w * value / slots
            if w > 0:
                parts.append(
                    f'<rect x="{x0:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 10}" fill="{colour}"/>'
                )
            x0 += w
        open_w = label_w + bar_w - x0
        if open_w > 0.05:
            parts.append(
                f'<rect x="{x0:.1f}" y="{y + 4}" width="{open_w:.1f}" height="{row_h - 10}" fill="#e0e0e0"/>'
            )
        rate = group.approval_rate
        caption = f"{group.completion:.0%} done" + (f", {rate:.0%} approved" if rate is not None else "")
        parts.append(f'<text x="{label_w + bar_w + 8}" y="{y + 17}" font-size="12">{caption}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def store_map(cards: list[StoreCard]) -> Markup:
    """Stores as dots at their position (equirectangular, scaled to the area), coloured by state."""
    width, height, pad = 640, 420, 24
    if not cards:
        return Markup("")
    lats = [c.store.lat for c in cards]
    lons = [c.store.lon for c in cards]
    mid_lat = (min(lats) + max(lats)) / 2
    squeeze = max(math.cos(math.radians(mid_lat)), 0.05)  # a degree of longitude is shorter
    span_x = max((max(lons) - min(lons)) * squeeze, 1e-4)
    span_y = max(max(lats) - min(lats), 1e-4)
    scale = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)
    off_x = (width - span_x * scale) / 2
    off_y = (height - span_y * scale) / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 30}" role="img" '
        f'aria-labelledby="map-title" class="chart map">',
        '<title id="map-title">Stores by position, coloured by state</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f4f6f8" stroke="#d0d7de"/>',
    ]
    for card in sorted(cards, key=lambda c: c.state == STATE_OPEN, reverse=True):
        x = off_x + (card.store.lon - min(lons)) * squeeze * scale
        y = height - (off_y + (card.store.lat - min(lats)) * scale)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{card.colour}" stroke="#ffffff" stroke-width="1.5">'
            f"<title>{escape(card.store.name)}: {card.state}</title></circle>"
        )
    x = 8
    for state, colour in STATE_COLOURS.items():
        parts.append(f'<circle cx="{x + 6}" cy="{height + 16}" r="6" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{height + 20}" font-size="12">{state}</text>')
        x += 150
    km = _scale_bar_km((width - 2 * pad) / scale * KM_PER_DEGREE)
    if km:
        bar = km / KM_PER_DEGREE * scale
        parts.append(
            f'<line x1="{width - bar - 12:.1f}" y1="{height - 12}" x2="{width - 12}" y2="{height - 12}" '
            'stroke="#333" stroke-width="2"/>'
        )
        parts.append(
            f'<text x="{width - 12}" y="{height - 18}" font-size="11" text-anchor="end">{km:g} km</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def _scale_bar_km(across_km: float) -> float:
    """A round length about a sixth of the map's width."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if step >= across_km / 6:
            return float(step)
    return 0.0


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fieldcheck.exports", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda cents, currency: f"{cents / 100:,.2f} {currency}"
    env.filters["distance"] = lambda m: (
        "\N{EN DASH}" if m is None else f"{m / 1000:,.1f} km" if m >= 1000 else f"{m:.0f} m"
    )
    env.filters["pct"] = lambda value: "\N{EN DASH}" if value is None else f"{value:.0%}"
    env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M UTC") if value else "\N{EN DASH}"
    return env


def write_report(
    out: IO[bytes],
    *,
    title: str,
    instructions: str,
    generated_at: datetime,
    summary: Summary,
    cards: list[StoreCard],
    read_object: Callable[[str], bytes],
    progress: Callable[[int, str], None],
) -> int:
    """Render the report into `out`; returns how many thumbnails it embeds."""
    embedded = 0

    def thumbnails(card: StoreCard) -> Iterator[tuple[str, str]]:
        nonlocal embedded
        shown = 0
        for row in sorted(card.rows, key=lambda r: r.status != AssignmentStatus.approved.value):
            for photo in row.photos:
                if shown >= THUMBNAILS_PER_STORE:
                    return
                if photo.thumbnail_key is None:
                    continue
                data = read_object(photo.thumbnail_key)
                shown += 1
                embedded += 1
                progress(embedded, f"thumbnails {embedded}")
                yield (
                    "data:image/jpeg;base64," + base64.b64encode(data).decode(),
                    f"{card.store.name}, visit of {row.visited_at:%Y-%m-%d}"
                    if row.visited_at
                    else card.store.name,
                )

    template = _environment().get_template("report.html.j2")
    stream = template.generate(
        title=title,
        instructions=instructions,
        generated_at=generated_at,
        summary=summary,
        chart=completion_chart(group_figures(cards)),
        store_map=store_map(cards),
        cards=sorted(cards, key=lambda c: (c.region, c.store.name)),
        thumbnails=thumbnails,
        colours=STATE_COLOURS,
        report_id=uuid.uuid4().hex[:8],
    )
    for chunk in stream:
        out.write(chunk.encode("utf-8"))
    return embedded
