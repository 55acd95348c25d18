"""A campaign's money: escrow held at activation for every slot, what it still owes, and the
rest given back once it can no longer be spent. The ledger moves the money; the rules are here.

What a campaign owes is read from its tasks' slot counters and the payments already made, never
from a scan of its assignments: while it runs, every slot not yet paid; once closed, only the
slots still held by an assignment on its way to a decision (or an appeal).
"""

from __future__ import annotations

import math
import uuid

from sqlmodel import Session

from fieldcheck.campaigns.models import Campaign, CampaignStatus
from fieldcheck.errors import Conflict
from fieldcheck.i18n import _, text
from fieldcheck.ledger import service as ledger
from fieldcheck.settings import Settings
from fieldcheck.tasks import service as tasks


def reference(campaign_id: uuid.UUID) -> str:
    """The campaign's key in the ledger (escrow held and refunds)."""
    return f"campaign:{campaign_id}"


def fee_per_slot(reward_cents: int, settings: Settings) -> int:
    return math.ceil(reward_cents * settings.platform_fee_bps / 10_000)


def per_slot(campaign: Campaign) -> int:
    """What escrow holds for each slot: the reward and the fee fixed at activation."""
    return campaign.reward_cents + campaign.fee_per_slot_cents


def hold_for_activation(session: Session, campaign: Campaign, settings: Settings) -> None:
    """First activation: reward x slots (+ fee) from the organization's balance; 409 when short."""
    reward, fee = campaign.reward_cents, fee_per_slot(campaign.reward_cents, settings)
    campaign.fee_per_slot_cents = fee
    session.add(campaign)
    slots = tasks.slots_of(session, campaign.id).total
    amount = slots * (reward + fee)
    try:
        ledger.hold_escrow(
            session,
            reference=reference(campaign.id),
            escrow_id=campaign.id,
            holder_id=campaign.organization_id,
            currency=campaign.currency,
            amount=amount,
            memo=f"Escrow for {slots} slot(s) of {reward} + {fee} fee",
            details={"slots": slots, "reward": reward, "fee": fee},
        )
    except ledger.InsufficientFunds:
        have = ledger.available_balance(session, campaign.organization_id, campaign.currency)
        raise Conflict(
            text(
                _(
                    "activating needs {amount:.2f} {currency} ({slots} slots x ({reward:.2f} reward + "
                    "{fee:.2f} fee)); the organization has {available:.2f} available"
                ),
                amount=amount / 100,
                currency=campaign.currency,
                slots=slots,
                reward=reward / 100,
                fee=fee / 100,
                available=have / 100,
            ),
            code="insufficient_funds",
            required_cents=amount,
            available_cents=have,
            currency=campaign.currency,
        ) from None


def top_up_for_reward(session: Session, campaign: Campaign, new_reward: int) -> int:
    """A raised reward: escrow gets the difference for every slot still owed, from the organization's
    balance (409 when short), under its own ledger key so each raise is held once. The fee keeps the
    rate fixed at activation. The caller holds the campaign's row lock and sets the reward."""
    new_fee = math.ceil(new_reward * campaign.fee_per_slot_cents / campaign.reward_cents)
    owed_slots = slots_owed(
        campaign,
        tasks.slots_of(session, campaign.id),
        ledger.escrow_position(session, campaign.id, campaign.currency).releases,
    )
    per_slot_more = new_reward + new_fee - per_slot(campaign)
    amount = owed_slots * per_slot_more
    if amount > 0:
        try:
            ledger.hold_escrow(
                session,
                reference=f"{reference(campaign.id)}:reward:{new_reward}",
                escrow_id=campaign.id,
                holder_id=campaign.organization_id,
                currency=campaign.currency,
                amount=amount,
                memo=f"Reward raised to {new_reward}: {owed_slots} slot(s) x {per_slot_more} more",
                details={
                    "slots": owed_slots,
                    "reward": new_reward,
                    "fee": new_fee,
                    "was": per_slot(campaign),
                },
            )
        except ledger.InsufficientFunds:
            have = ledger.available_balance(session, campaign.organization_id, campaign.currency)
            raise Conflict(
                text(
                    _(
                        "raising the reward needs {amount:.2f} {currency} more in escrow ({slots} slots still "
                        "owed); the organization has {available:.2f} available"
                    ),
                    amount=amount / 100,
                    currency=campaign.currency,
                    slots=owed_slots,
                    available=have / 100,
                ),
                code="insufficient_funds",
                required_cents=amount,
                available_cents=have,
                currency=campaign.currency,
            ) from None
    campaign.fee_per_slot_cents = new_fee
    return amount


def slots_owed(campaign: Campaign, slots: tasks.Slots, releases: int) -> int:
    """Slots the campaign may still have to pay for, given its slot counters and payments made.

    Approved work holds its slot and was paid from escrow, so `taken - releases` counts the slots
    held by assignments not paid yet: reserved, delivered, in review, rejected within the appeal
    window, appealed. A slot given back (expired, cancelled, finally rejected) is owed no more
    once the campaign is closed; while it runs, another worker may still take it.
    """
    if campaign.activated_at is None:
        return 0
    held = slots.taken if campaign.status == CampaignStatus.closed.value else slots.total
    return held - releases


def owed_cents(session: Session, campaign: Campaign) -> int:
    releases = ledger.escrow_position(session, campaign.id, campaign.currency).releases
    return slots_owed(campaign, tasks.slots_of(session, campaign.id), releases) * per_slot(campaign)


def settle(session: Session, campaign: Campaign) -> int:
    """Give back what the campaign can no longer spend; returns the amount refunded."""
    if campaign.activated_at is None:
        return 0
    return ledger.refund_escrow(
        session,
        reference=reference(campaign.id),
        escrow_id=campaign.id,
        holder_id=campaign.organization_id,
        currency=campaign.currency,
        keep=owed_cents(session, campaign),
    )


def settle_if_closed(session: Session, campaign_id: uuid.UUID) -> None:
    """A slot given back in a closed campaign will never be paid: its escrow goes back at once."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is not None and campaign.status == CampaignStatus.closed.value:
        settle(session, campaign)
