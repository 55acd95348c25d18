from __future__ import annotations

import uuid

from sqlmodel import Session

from fieldcheck.errors import NotFound
from fieldcheck.organizations.models import Organization


def create_organization(session: Session, *, name: str) -> Organization:
    organization = Organization(name=name)
    session.add(organization)
    session.flush()
    return organization


def get_organization(session: Session, organization_id: uuid.UUID) -> Organization:
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise NotFound("no such organization", code="organization_not_found")
    return organization
