"""The seam between campaigns and money: activation holds escrow, closing returns what is unused."""

from __future__ import annotations

from sqlmodel import Session

from fieldcheck.campaigns.models import Campaign
from fieldcheck.ledger import service as ledger
from fieldcheck.settings import Settings


def hold_escrow_for_activation(session: Session, campaign: Campaign, settings: Settings) -> None:
    """First activation: reward x slots (+ fee) from the organization's balance; 409 when short."""
    ledger.hold_escrow(session, campaign, settings)


def release_unused_escrow(session: Session, campaign: Campaign, settings: Settings) -> None:
    """Closing: give back what the campaign will no longer spend."""
    ledger.refund_unused_escrow(session, campaign, settings)
