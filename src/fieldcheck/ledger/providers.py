"""The edges of the platform's money: taking client payments, sending worker payouts.

Both are interfaces; the defaults let the whole flow run on one machine. The simulated payment
provider settles at once; the SEPA payout provider writes a credit-transfer batch (CSV) to object
storage for the bank upload, and fails payouts whose IBAN does not validate.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from typing import Protocol

from fieldcheck.i18n import _
from fieldcheck.spreadsheet import safe_cell
from fieldcheck.storage import ObjectStorage


@dataclass(frozen=True)
class Charge:
    settled: bool
    reference: str
    failure: str | None = None


class PaymentProvider(Protocol):
    name: str

    def charge(
        self, *, organization_id: str, amount_cents: int, currency: str, idempotency_key: str
    ) -> Charge: ...


class SimulatedPaymentProvider:
    """Settles every charge at once: for the embedded default, demos and tests."""

    name = "simulated"

    def charge(
        self, *, organization_id: str, amount_cents: int, currency: str, idempotency_key: str
    ) -> Charge:
        return Charge(settled=True, reference=f"sim_{secrets.token_hex(8)}")


@dataclass(frozen=True)
class PayoutOrder:
    payout_id: str
    account_holder: str
    iban: str
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class PayoutResult:
    payout_id: str
    sent: bool
    batch_key: str | None
    failure: str | None = None


class PayoutProvider(Protocol):
    name: str

    def send(self, orders: list[PayoutOrder], *, batch_key: str) -> list[PayoutResult]:
        """Hand one batch over. Called again with the same batch after a crash: must not pay twice."""
        ...


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: country, check digits, and the mod-97 test."""
    compact = iban.replace(" ", "").upper()
    if (
        not (15 <= len(compact) <= 34)
        or not compact[:2].isalpha()
        or not compact[2:4].isdigit()
        or not compact.isalnum()
    ):
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


class SepaCsvPayoutProvider:
    name = "sepa_csv"

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage

    def send(self, orders: list[PayoutOrder], *, batch_key: str) -> list[PayoutResult]:
        valid = [o for o in orders if iban_is_valid(o.iban)]
        results = [
            PayoutResult(o.payout_id, sent=False, batch_key=None, failure=_("the IBAN does not validate"))
            for o in orders
            if o not in valid
        ]
        if not valid:
            return results
        # One file per batch key: a retried batch rewrites the same file, it never adds a second one.
        key = batch_key
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            ["end_to_end_id", "creditor_name", "creditor_iban", "amount", "currency", "remittance"]
        )
        for order in valid:
            # The holder's name is the worker's text: defused, the file is opened in spreadsheets.
            writer.writerow(
                safe_cell(cell)
                for cell in [
                    order.payout_id,
                    order.account_holder,
                    order.iban.replace(" ", "").upper(),
                    f"{order.amount_cents // 100}.{order.amount_cents % 100:02d}",
                    order.currency,
                    f"fieldcheck payout {order.payout_id[:8]}",
                ]
            )
        self.storage.put(key, out.getvalue().encode("utf-8"), content_type="text/csv")
        return results + [PayoutResult(o.payout_id, sent=True, batch_key=key) for o in valid]
