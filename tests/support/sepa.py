"""Reading payout files back: checked against the official ISO 20022 schema (the XSDs sepaxml
ships, loaded here with xmlschema, apart from the check the code makes), and the fields tests read."""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import sepaxml
import xmlschema

from fieldcheck.ledger.sepa import EPC_CHARACTERS

SCHEMAS = Path(sepaxml.__file__).parent / "schemas"
VERSIONS = ("pain.001.001.09", "pain.001.001.03")
NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:"


@functools.cache
def schema(version: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(SCHEMAS / f"{version}.xsd")


def schema_errors(document: bytes, version: str) -> list[str]:
    """What the official schema of `version` finds wrong with the file (nothing: an empty list)."""
    return [str(error.reason) for error in schema(version).iter_errors(document.decode("utf-8"))]


def cents(amount: str) -> int:
    """An XML amount ("20.05") as integer cents, refusing anything finer than a cent."""
    value = Decimal(amount) * 100
    assert value == value.to_integral_value(), amount
    return int(value)


def is_sepa_text(value: str) -> bool:
    return bool(value) and all(c in EPC_CHARACTERS for c in value)


@dataclass(frozen=True)
class Transaction:
    end_to_end_id: str
    creditor_name: str
    creditor_iban: str
    amount_cents: int
    currency: str
    remittance: str


@dataclass(frozen=True)
class PayoutFile:
    version: str
    message_id: str
    created_at: str
    count: int
    control_sum_cents: int
    initiating_party: str
    debtor_name: str
    debtor_iban: str
    debtor_bic: str | None
    payment_ids: list[str]
    payment_counts: list[int]
    payment_sums_cents: list[int]
    execution_date: str
    transactions: list[Transaction]


def read(document: bytes) -> PayoutFile:
    root = ET.fromstring(document)  # noqa: S314 (the file the code under test wrote)
    assert root.tag.startswith("{" + NAMESPACE), root.tag
    namespace = root.tag[1:].partition("}")[0]
    ns = {"p": namespace}
    version = namespace.removeprefix(NAMESPACE)

    def one(parent: ET.Element, path: str) -> str:
        found = parent.findall(path, ns)
        assert len(found) == 1, (path, len(found))
        return found[0].text or ""

    initiation = root.find("p:CstmrCdtTrfInitn", ns)
    assert initiation is not None
    payments = initiation.findall("p:PmtInf", ns)
    assert payments
    first = payments[0]
    bic_field = "BIC" if version == "pain.001.001.03" else "BICFI"
    bics = first.findall(f"p:DbtrAgt/p:FinInstnId/p:{bic_field}", ns)
    date_path = "p:ReqdExctnDt" if version == "pain.001.001.03" else "p:ReqdExctnDt/p:Dt"
    return PayoutFile(
        version=version,
        message_id=one(initiation, "p:GrpHdr/p:MsgId"),
        created_at=one(initiation, "p:GrpHdr/p:CreDtTm"),
        count=int(one(initiation, "p:GrpHdr/p:NbOfTxs")),
        control_sum_cents=cents(one(initiation, "p:GrpHdr/p:CtrlSum")),
        initiating_party=one(initiation, "p:GrpHdr/p:InitgPty/p:Nm"),
        debtor_name=one(first, "p:Dbtr/p:Nm"),
        debtor_iban=one(first, "p:DbtrAcct/p:Id/p:IBAN"),
        debtor_bic=bics[0].text if bics else None,
        payment_ids=[one(p, "p:PmtInfId") for p in payments],
        payment_counts=[int(one(p, "p:NbOfTxs")) for p in payments],
        payment_sums_cents=[cents(one(p, "p:CtrlSum")) for p in payments],
        execution_date=one(first, date_path),
        transactions=[
            Transaction(
                end_to_end_id=one(t, "p:PmtId/p:EndToEndId"),
                creditor_name=one(t, "p:Cdtr/p:Nm"),
                creditor_iban=one(t, "p:CdtrAcct/p:Id/p:IBAN"),
                amount_cents=cents(one(t, "p:Amt/p:InstdAmt")),
                currency=_attribute(t, "p:Amt/p:InstdAmt", "Ccy", ns),
                remittance=one(t, "p:RmtInf/p:Ustrd"),
            )
            for p in payments
            for t in p.findall("p:CdtTrfTxInf", ns)
        ],
    )


def _attribute(parent: ET.Element, path: str, name: str, ns: dict[str, str]) -> str:
    element = parent.find(path, ns)
    assert element is not None, path
    return element.get(name, "")
