"""Duplicate detection against every earlier photo on the platform.

Exact copies are found by sha256 in the database. Near copies (re-encoded, resized, slightly
cropped or brightened) are found by comparing 64-bit perceptual hashes with every stored one: each
process keeps all hashes in memory (8 bytes each, loaded incrementally from `photo_hashes`) and
compares them at once with numpy (XOR and popcount over the whole array: about 3 ms per million
hashes here). A hash match is only a candidate: the dHash and the 16x16 fingerprint of both photos
must agree too, which keeps false matches rare among millions of photos.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session, col, select, text

from fieldcheck.checks.hashes import PHASH_MAX_DISTANCE
from fieldcheck.checks.models import PhotoHash

INITIAL_CAPACITY = 1024
# Serializes the last step of every check job on PostgreSQL: find duplicates, store the new
# hashes, commit. Without it two jobs holding the same photo could each miss the other.
DUPLICATE_LOCK_KEY = 727_100_002


@dataclass(frozen=True)
class Candidate:
    photo_id: uuid.UUID  # a photo's id, or a reference photo's
    distance: int


class HashIndex:
    """Every stored perceptual hash of the platform (photos and reference photos), in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hashes = np.empty(INITIAL_CAPACITY, dtype=np.uint64)
        self._ids: list[uuid.UUID] = []
        self._size = 0
        self._last_seq = 0
        self._scratch: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self._size

    def add(self, seq: int, photo_id: uuid.UUID, phash: int) -> None:
        with self._lock:
            self._append([(seq, photo_id, phash)])

    def _append(self, rows: list[tuple[int, uuid.UUID, int]]) -> None:
        needed = self._size + len(rows)
        if needed > len(self._hashes):
            grown = np.empty(max(needed, 2 * len(self._hashes)), dtype=np.uint64)
            grown[: self._size] = self._hashes[: self._size]
            self._hashes = grown
            self._scratch = None
        values = np.array([phash for _, _, phash in rows], dtype=np.int64).view(np.uint64)
        self._hashes[self._size : needed] = values
        self._ids.extend(photo_id for _, photo_id, _ in rows)
        self._size = needed
        self._last_seq = max(self._last_seq, max(seq for seq, _, _ in rows))

    def refresh(self, session: Session, batch: int = 100_000) -> int:
        """Load the hashes stored since the last refresh; returns how many were new."""
        loaded = 0
        with self._lock:
            while True:
                rows = session.exec(
                    select(PhotoHash.seq, PhotoHash.photo_id, PhotoHash.reference_id, PhotoHash.phash)
                    .where(col(PhotoHash.seq) > self._last_seq)
                    .order_by(col(PhotoHash.seq))
                    .limit(batch)
                ).all()
                if not rows:
                    return loaded
                self._append([(int(s or 0), _owner(p, r), h) for s, p, r, h in rows])
                loaded += len(rows)

    def candidates(self, phash: int, max_distance: int = PHASH_MAX_DISTANCE) -> list[Candidate]:
        """Every stored photo whose perceptual hash is within `max_distance` bits."""
        with self._lock:
            if self._size == 0:
                return []
            if self._scratch is None or len(self._scratch[0]) != len(self._hashes):
                self._scratch = (np.empty_like(self._hashes), np.empty(len(self._hashes), dtype=np.uint8))
            xor, count = self._scratch
            size = self._size
            target = np.array([phash], dtype=np.int64).view(np.uint64)[0]
            np.bitwise_xor(self._hashes[:size], target, out=xor[:size])
            np.bitwise_count(xor[:size], out=count[:size])
            found = np.flatnonzero(count[:size] <= max_distance)
            return [Candidate(self._ids[i], int(count[i])) for i in found]


def _owner(photo_id: uuid.UUID | None, reference_id: uuid.UUID | None) -> uuid.UUID:
    owner = photo_id or reference_id
    assert owner is not None  # the table's one_owner constraint
    return owner


def lock_for_duplicates(session: Session) -> None:
    """Take the duplicate lock until the transaction ends (SQLite's write lock already is one)."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(text(f"SELECT pg_advisory_xact_lock({DUPLICATE_LOCK_KEY})"))  # type: ignore[call-overload]
