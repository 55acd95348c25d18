"""The edges of the platform's money: taking client payments, sending worker payouts.

Both are interfaces; the defaults let the whole flow run on one machine. The simulated payment
provider settles at once; the SEPA payout provider writes each batch as a credit-transfer file
(ISO 20022 pain.001, see sepa.py) to object storage for the upload to the bank, and fails payouts
whose IBAN does not validate or that are not in euros.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from fieldcheck.i18n import _
from fieldcheck.ledger.sepa import (
    BATCH_FOLDER,
    CURRENCY,
    Debtor,
    Transfer,
    credit_transfer,
    end_to_end_id,
    message_id,
    remittance,
)
from fieldcheck.settings import PainVersion, Settings
from fieldcheck.storage import ObjectStorage

log = logging.getLogger("fieldcheck.ledger.payouts")


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


# The debtor of the embedded default: the files are complete and valid, but no bank holds this
# account (DE, bank code and account number all zero), so none would execute them.
DEMO_DEBTOR = Debtor(name="fieldcheck demo debtor", iban="DE36000000000000000000")
# payouts/batches/YYYY/MM/DD/HHMMSS-xxxxxxxx.xml (.csv for batches from before the SEPA files).
BATCH_KEY = re.compile(
    re.escape(BATCH_FOLDER) + r"(?P<day>\d{4}/\d{2}/\d{2})/(?P<time>\d{6})-[0-9a-f]{8}\.(?:xml|csv)"
)


def new_batch_key(now: datetime) -> str:
    """The name of a new batch's file, which also tells when the batch was made."""
    return f"{BATCH_FOLDER}{now:%Y/%m/%d}/{now:%H%M%S}-{secrets.token_hex(4)}.xml"


def batch_made_at(batch_key: str) -> datetime:
    """When the batch of `batch_key` was made (UTC, to the second): read back from its key, so a
    batch written again is written with the same time."""
    found = BATCH_KEY.fullmatch(batch_key)
    if found is None:
        raise ValueError(f"{batch_key!r} is not a payout batch key")
    return datetime.strptime(found["day"] + found["time"], "%Y/%m/%d%H%M%S").replace(tzinfo=UTC)


class SepaXmlPayoutProvider:
    """Writes each batch as one SEPA credit-transfer file (ISO 20022 pain.001) to object storage,
    for the upload to the bank. Refuses payouts whose IBAN does not validate and payouts in
    another currency than the euro, the only one a SEPA transfer carries."""

    name = "sepa_pain001"

    def __init__(self, storage: ObjectStorage, *, debtor: Debtor, version: PainVersion) -> None:
        if not iban_is_valid(debtor.iban):
            raise ValueError(
                f"the payout debtor's IBAN {debtor.iban!r} does not validate (FIELDCHECK_PAYOUT_DEBTOR_IBAN)"
            )
        self.storage, self.debtor, self.version = storage, debtor, version

    @classmethod
    def from_settings(cls, storage: ObjectStorage, settings: Settings) -> SepaXmlPayoutProvider:
        debtor = DEMO_DEBTOR
        if settings.payout_debtor_name is not None and settings.payout_debtor_iban is not None:
            debtor = Debtor(
                settings.payout_debtor_name, settings.payout_debtor_iban, settings.payout_debtor_bic
            )
        return cls(storage, debtor=debtor, version=settings.payout_pain_version)

    def send(self, orders: list[PayoutOrder], *, batch_key: str) -> list[PayoutResult]:
        results, valid = [], []
        for order in orders:
            refusal = self.refusal(order)
            if refusal is None:
                valid.append(order)
            else:
                results.append(PayoutResult(order.payout_id, sent=False, batch_key=None, failure=refusal))
        if not valid:
            return results
        document = credit_transfer(
            self.version,
            message=message_id(batch_key),
            created_at=batch_made_at(batch_key),
            debtor=self.debtor,
            transfers=[
                Transfer(
                    end_to_end_id=end_to_end_id(order.payout_id),
                    creditor_name=order.account_holder,
                    creditor_iban=order.iban,
                    amount_cents=order.amount_cents,
                    remittance=remittance(order.payout_id),
                )
                for order in valid
            ],
        )
        if self.debtor == DEMO_DEBTOR:
            log.warning(
                "payout batch %s is paid from the demo debtor, which no bank accepts: set "
                "FIELDCHECK_PAYOUT_DEBTOR_NAME and FIELDCHECK_PAYOUT_DEBTOR_IBAN",
                batch_key,
            )
        # One file per batch key: a retried batch rewrites the same file, it never adds a second one.
        self.storage.put(batch_key, document, content_type="application/xml")
        return results + [PayoutResult(o.payout_id, sent=True, batch_key=batch_key) for o in valid]

    @staticmethod
    def refusal(order: PayoutOrder) -> str | None:
        """Why the order cannot go into a SEPA file (a message id, read by the worker), or None."""
        if order.currency != CURRENCY:
            return _("only euros can be paid out by SEPA transfer")
        if not iban_is_valid(order.iban):
            return _("the IBAN does not validate")
        return None
