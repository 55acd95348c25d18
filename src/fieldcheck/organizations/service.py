from __future__ import annotations

from sqlmodel import Session, col, select

from fieldcheck.organizations.models import Organization


def create_organization(session: Session, *, name: str) -> Organization:
    organization = Organization(name=name)
    session.add(organization)
    session.flush()
    return organization


def list_organizations(session: Session) -> list[Organization]:
    """Every client organization, by name (what an admin picks a client account's from)."""
    return list(
        session.exec(select(Organization).order_by(col(Organization.name), col(Organization.id))).all()
    )
