"""The seam between campaigns and money.

Campaign transitions call these functions inside their own transaction; the ledger decides
whether the organization can pay for what it asks, and moves the money.
"""

from __future__ import annotations

from sqlmodel import Session

from fieldcheck.campaigns.models import Campaign


def hold_escrow_for_activation(session: Session, campaign: Campaign, *, slots: int) -> None:
    """First activation: reserve reward x slots (+ fee) from the organization's balance."""


def release_unused_escrow(session: Session, campaign: Campaign) -> None:
    """Closing: give back what the campaign will no longer spend."""
