from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from fieldcheck.assignments.models import AssignmentStatus, DecidedBy


class ResultStoreOut(BaseModel):
    id: uuid.UUID
    external_ref: str | None
    name: str
    address: str | None
    lat: float
    lon: float


class ResultPhotoOut(BaseModel):
    id: uuid.UUID
    url: str = Field(description="client-safe copy (no metadata, faces blurred); signed, expiring")
    thumbnail_url: str | None
    faces_blurred: int


class CheckSummaryOut(BaseModel):
    passed: int
    warned: int
    failed: int
    notes: list[str] = Field(description="the explanation of each check that did not pass")


class ResultDecisionOut(BaseModel):
    outcome: AssignmentStatus
    decided_by: DecidedBy = Field(description="the system or a person (never who)")
    reasons: list[str]
    decided_at: datetime


class ResultOut(BaseModel):
    assignment_id: uuid.UUID
    task_id: uuid.UUID
    store: ResultStoreOut
    status: AssignmentStatus
    decision: ResultDecisionOut | None
    photos: list[ResultPhotoOut]
    check_summary: CheckSummaryOut
    visited_at: datetime | None = Field(description="when the photos were taken (else when submitted)")
    submitted_at: datetime | None
    distance_m: float | None = Field(description="from the store, as the phone reported its position")


class SummaryOut(BaseModel):
    stores: int
    slots_total: int
    tasks_done: int = Field(description="tasks whose every slot has approved work")
    submitted: int
    approved: int
    rejected: int
    in_review: int
    reserved: int
    completion: float = Field(description="approved visits / visits asked for, 0..1")
    approval_rate: float | None
    currency: str
    spent_cents: int = Field(description="rewards and fees released from escrow")
    escrow_left_cents: int


class ResultsPage(BaseModel):
    items: list[ResultOut]
    next_cursor: str | None = None
    summary: SummaryOut
