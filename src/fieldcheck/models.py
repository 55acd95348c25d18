"""Every table model, imported once so that Alembic and the schema test see the whole schema."""

from fieldcheck.auth.models import LoginFailure, User
from fieldcheck.db import metadata
from fieldcheck.jobs import JobExecution, OutboxMessage, ScheduleSlot
from fieldcheck.organizations.models import Organization

__all__ = [
    "JobExecution",
    "LoginFailure",
    "Organization",
    "OutboxMessage",
    "ScheduleSlot",
    "User",
    "metadata",
]
