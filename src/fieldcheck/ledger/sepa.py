"""SEPA credit-transfer files (ISO 20022 pain.001) for payout batches: transfers in, bytes out.

sepaxml builds the document, which is checked against the official schema sepaxml ships; what it
makes random (the message and payment-information ids, the creation time) is set here from the
batch, so that a batch written again after a crash is the same file. Names are written in the
character set every SEPA bank accepts (EPC guidelines): a-z A-Z 0-9 / - ? : ( ) . , ' + space.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sepaxml
from sepaxml import SepaTransfer
from text_unidecode import unidecode

from fieldcheck.settings import PainVersion

if TYPE_CHECKING:
    import xmlschema

CURRENCY = "EUR"  # a SEPA credit transfer moves euros only
EPC_CHARACTERS = frozenset(string.ascii_letters + string.digits + "/-?:().,'+ ")
NAME_LENGTH = 70  # Max70Text: creditor and debtor names
REMITTANCE_LENGTH = 140  # Max140Text: the unstructured remittance line
ID_LENGTH = 35  # Max35Text: message, payment-information and end-to-end ids
# What a name is written as when nothing of it is left in the SEPA character set (emoji only...).
NAME_PLACEHOLDER = "NOTPROVIDED"
# The debtor's bank when no BIC is configured (the EPC and German DK rules' word for it).
NO_BIC = "NOTPROVIDED"
UNKNOWN_CHARACTER = "[?]"  # what the transliteration writes for characters it has no ASCII for
ID_PREFIX = "FC-"
BATCH_FOLDER = "payouts/batches/"
SCHEMAS = Path(sepaxml.__file__).parent / "schemas"  # the official XSDs, as sepaxml ships them


@dataclass(frozen=True)
class Debtor:
    """The platform's account the payouts are paid from."""

    name: str
    iban: str
    bic: str | None = None


@dataclass(frozen=True)
class Transfer:
    end_to_end_id: str
    creditor_name: str
    creditor_iban: str
    amount_cents: int
    remittance: str


def sepa_text(value: str, limit: int = NAME_LENGTH, placeholder: str = NAME_PLACEHOLDER) -> str:
    """`value` transliterated to ASCII, then to the SEPA character set (anything else becomes a
    space), spaces collapsed, cut to `limit`; the placeholder when nothing is left."""
    ascii_text = unidecode(value).replace(UNKNOWN_CHARACTER, " ")
    kept = "".join(c if c in EPC_CHARACTERS else " " for c in ascii_text)
    return " ".join(kept.split())[:limit].rstrip() or placeholder


def end_to_end_id(payout_id: str) -> str:
    """The payout's id as the bank carries it back (32 hex digits, no dashes: fits Max35Text);
    `uuid.UUID(end_to_end_id)` is the payout's id again."""
    return uuid.UUID(payout_id).hex


def remittance(payout_id: str) -> str:
    return f"fieldcheck payout {uuid.UUID(payout_id).hex[:8]}"


def message_id(batch_key: str) -> str:
    """The file's MsgId, from its batch key alone (so the same for a batch written again):
    `payouts/batches/2026/05/01/101500-3fa2c1d9.xml` -> `FC-2026-05-01-101500-3fa2c1d9`; a key of
    another shape gets a digest of itself."""
    stem = batch_key.removeprefix(BATCH_FOLDER).rsplit(".", 1)[0]
    readable = ID_PREFIX + re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")
    # Room for the payment-information id, which adds "-1".
    if stem and len(readable) <= ID_LENGTH - 2:
        return readable
    return ID_PREFIX + hashlib.sha256(batch_key.encode()).hexdigest()[: ID_LENGTH - len(ID_PREFIX) - 2]


def credit_transfer(
    version: PainVersion,
    *,
    message: str,
    created_at: datetime,
    debtor: Debtor,
    transfers: Sequence[Transfer],
) -> bytes:
    """One SEPA credit-transfer file: one payment information (the debtor, executed on the day the
    batch was made), one transaction per transfer. Checked against the version's schema: raises
    xmlschema.XMLSchemaValidationError when it does not hold."""
    if not transfers:
        raise ValueError("a credit-transfer file holds at least one transfer")
    config: dict[str, object] = {
        "name": sepa_text(debtor.name),
        "IBAN": compact_iban(debtor.iban),
        "currency": CURRENCY,
        "batch": True,
    }
    if debtor.bic:
        config["BIC"] = debtor.bic
    # clean=False: names are already in the SEPA character set (sepaxml would only transliterate).
    document = SepaTransfer(config, schema=version, clean=False)
    for transfer in transfers:
        document.add_payment(
            {
                "name": sepa_text(transfer.creditor_name),
                "IBAN": compact_iban(transfer.creditor_iban),
                "amount": transfer.amount_cents,  # integer cents: sepaxml writes them exactly
                "execution_date": created_at.astimezone(UTC).date(),
                "description": sepa_text(transfer.remittance, REMITTANCE_LENGTH),
                "endtoend_id": transfer.end_to_end_id,
            }
        )
    root = ET.fromstring(document.export(validate=False))  # noqa: S314 (sepaxml's own output)
    # Elements by their local names: sepaxml writes the namespace as a plain attribute of the
    # root, and so does this (ElementTree's own namespace handling is global state).
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    root.set("xmlns", f"urn:iso:std:iso:20022:tech:xsd:{version}")
    _set(root, "CstmrCdtTrfInitn/GrpHdr/MsgId", message)
    # The batch's time in UTC, to the second, written as sepaxml writes it (no zone).
    _set(root, "CstmrCdtTrfInitn/GrpHdr/CreDtTm", f"{created_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}")
    for number, payment in enumerate(root.iterfind("CstmrCdtTrfInitn/PmtInf"), start=1):
        _set(payment, "PmtInfId", f"{message}-{number}")
        institution = payment.find("DbtrAgt/FinInstnId")
        if institution is not None and len(institution) == 0:
            ET.SubElement(ET.SubElement(institution, "Othr"), "Id").text = NO_BIC
    ET.indent(root)
    written = ('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")).encode()
    schema(version).validate(written.decode())
    return written


@functools.cache
def schema(version: PainVersion) -> xmlschema.XMLSchema:
    """The version's official schema, loaded once per process (sepaxml would load it per file)."""
    # Imported here: 0.2 s of a process's start, spent only by the one that writes payout files.
    import xmlschema

    return xmlschema.XMLSchema(SCHEMAS / f"{version}.xsd")


def compact_iban(iban: str) -> str:
    return iban.replace(" ", "").upper()


def _set(parent: ET.Element, path: str, value: str) -> None:
    element = parent.find(path)
    if element is None:
        raise ValueError(f"sepaxml wrote no {path}")
    element.text = value
