"""Every table model, imported once so that Alembic and the schema test see the whole schema."""

from fieldcheck.assignments.models import Assignment, AssignmentEvent
from fieldcheck.auth.models import LoginFailure, User
from fieldcheck.campaigns.models import Campaign
from fieldcheck.db import metadata
from fieldcheck.jobs import JobExecution, OutboxMessage, ScheduleSlot
from fieldcheck.organizations.models import Organization
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task

__all__ = [
    "Assignment",
    "AssignmentEvent",
    "Campaign",
    "JobExecution",
    "LoginFailure",
    "Organization",
    "OutboxMessage",
    "ScheduleSlot",
    "Store",
    "Task",
    "User",
    "metadata",
]
