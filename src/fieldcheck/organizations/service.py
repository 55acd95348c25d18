from __future__ import annotations

from sqlmodel import Session

from fieldcheck.organizations.models import Organization


def create_organization(session: Session, *, name: str) -> Organization:
    organization = Organization(name=name)
    session.add(organization)
    session.flush()
    return organization
