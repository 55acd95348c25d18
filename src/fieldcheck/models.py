"""Every table model, imported once so that Alembic and the schema test see the whole schema."""

from fieldcheck.assignments.models import Assignment, AssignmentEvent
from fieldcheck.auth.models import LoginFailure, RevokedToken, User
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks.models import CheckResultRow, PhotoFeatures, PhotoHash, ReferencePhoto
from fieldcheck.console.models import ConsoleSession
from fieldcheck.db import metadata
from fieldcheck.exports.models import Export
from fieldcheck.idempotency import IdempotencyRecord
from fieldcheck.jobs import JobExecution, OutboxMessage, ScheduleSlot
from fieldcheck.ledger.models import (
    Deposit,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    LedgerVerification,
    Payout,
    PayoutDetails,
)
from fieldcheck.organizations.models import Organization
from fieldcheck.photos.models import Photo
from fieldcheck.privacy.models import DataExport
from fieldcheck.ratelimit import RateCounter
from fieldcheck.reviews.models import Appeal, Review, ReviewClaim
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from fieldcheck.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "Appeal",
    "Assignment",
    "AssignmentEvent",
    "Campaign",
    "CheckResultRow",
    "ConsoleSession",
    "DataExport",
    "Deposit",
    "Export",
    "IdempotencyRecord",
    "JobExecution",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "LedgerVerification",
    "LoginFailure",
    "Organization",
    "OutboxMessage",
    "Payout",
    "PayoutDetails",
    "Photo",
    "PhotoFeatures",
    "PhotoHash",
    "RateCounter",
    "ReferencePhoto",
    "Review",
    "ReviewClaim",
    "RevokedToken",
    "ScheduleSlot",
    "Store",
    "Task",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]
