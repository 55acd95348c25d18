"""The clients' console pages over plain HTTP: stores, a new campaign, money, a campaign's life."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlmodel import col, select

from fieldcheck.auth.models import Role
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks.models import ReferencePhoto
from fieldcheck.ledger.models import Deposit
from fieldcheck.settings import Settings
from fieldcheck.stores.models import Store
from tests.support.backends import BackendFactory
from tests.support.console import csrf_of, sign_in
from tests.support.factories import Account, make_account, runtime_of
from tests.support.photos import real

GOOD_CSV = "external_ref,name,address,lat,lon\n" + "".join(
    f"R-{i:02d},Store {i},{i} rue du Test,48.{8500 + i},2.{3500 + i}\n" for i in range(12)
)
BAD_CSV = (
    "external_ref,name,address,lat,lon\n"
    "R-01,Store 1,1 rue,48.85,2.35\n"
    "R-02,Store 2,2 rue,north,2.35\n"
    "R-03,,3 rue,48.85,2.35\n"
)


@pytest.fixture(params=[pytest.param("embedded", id="embedded"), pytest.param("services", id="services")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param)


def signed_in_client(app_client: Any, *, organization_id: uuid.UUID | None = None) -> tuple[Account, str]:
    client = make_account(runtime_of(app_client), Role.client, organization_id=organization_id)
    assert sign_in(app_client, client).status_code == 303
    return client, csrf_of(app_client.get("/console/stores").text)


def import_csv(app_client: Any, token: str, content: str) -> Any:
    return app_client.post(
        "/console/stores/import",
        data={"csrf_token": token},
        files={"file": ("stores.csv", content.encode(), "text/csv")},
        follow_redirects=False,
    )


def stores_of(app_client: Any, organization_id: uuid.UUID | None) -> list[Store]:
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        return list(session.exec(select(Store).where(Store.organization_id == organization_id)).all())


def test_stores_import_shows_every_bad_line_then_imports_all_or_nothing(app_client: Any) -> None:
    client, token = signed_in_client(app_client)
    sample = app_client.get("/console/stores/sample.csv")
    assert sample.status_code == 200 and sample.text.startswith("external_ref,name,address,lat,lon")
    assert "attachment" in sample.headers["content-disposition"]
    refused = import_csv(app_client, token, BAD_CSV)
    assert refused.status_code == 422
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", refused.text)
    assert [(line, column) for line, column, _ in rows] == [("3", "lat"), ("4", "name")], rows
    assert "Nothing was imported" in refused.text and stores_of(app_client, client.organization_id) == []
    assert import_csv(app_client, "forged", GOOD_CSV).status_code == 403
    done = import_csv(app_client, token, GOOD_CSV)
    assert done.status_code == 303 and "created=12" in done.headers["location"]
    assert len(stores_of(app_client, client.organization_id)) == 12
    again = import_csv(app_client, token, GOOD_CSV)
    assert "created=0" in again.headers["location"] and "updated=12" in again.headers["location"]
    found = app_client.get("/console/stores", params={"q": "r-1"})
    assert "2 of 12 stores match" in found.text and "Store 10" in found.text and "Store 9" not in found.text
    assert app_client.get("/console/stores/count", params={"q": "store"}).json() == {"count": 12}
    assert import_csv(app_client, token, "").status_code == 422


def test_adding_a_store_keeps_what_was_typed_next_to_its_errors(app_client: Any) -> None:
    client, token = signed_in_client(app_client)
    typed = {"csrf_token": token, "name": "Rivoli", "external_ref": "RIV", "lat": "north", "lon": "2.35"}
    refused = app_client.post("/console/stores", data=typed, follow_redirects=False)
    assert refused.status_code == 422
    assert (
        'id="e-lat"' in refused.text and 'value="Rivoli"' in refused.text and 'value="north"' in refused.text
    )
    added = app_client.post("/console/stores", data={**typed, "lat": "48,85"}, follow_redirects=False)
    assert added.status_code == 303 and "notice=store_added" in added.headers["location"]
    taken = app_client.post("/console/stores", data={**typed, "lat": "48.85"}, follow_redirects=False)
    assert taken.status_code == 422 and 'id="e-external_ref"' in taken.text and "already exists" in taken.text
    (store,) = stores_of(app_client, client.organization_id)
    assert store.lat == 48.85 and store.external_ref == "RIV"


def campaign_form(token: str, **changes: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "title": "Yoghurt shelf",
        "instructions": "Photograph the whole yoghurt shelf.",
        "reward": "4.50",
        "currency": "EUR",
        "estimated_minutes": "15",
        "slots_per_store": "2",
        "min_photos": "1",
        "max_photos": "5",
        "min_short_side_px": "1000",
        "stores": "refs",
        "store_refs": "R-00\nR-01\nR-02",
        **changes,
    }


def test_a_new_campaign_under_the_floor_is_refused_with_what_to_change(app_client: Any) -> None:
    client, token = signed_in_client(app_client)
    assert import_csv(app_client, token, GOOD_CSV).status_code == 303
    form = app_client.get("/console/campaigns/new")
    assert form.status_code == 200 and 'data-store-total="12"' in form.text and '"EUR": 1202' in form.text
    # 1.00 for 15 minutes is 4.00 an hour; the floor is 12.02: 3.01 for 15 minutes, or 4 minutes.
    low = app_client.post(
        "/console/campaigns/new", data=campaign_form(token, reward="1"), follow_redirects=False
    )
    assert low.status_code == 422
    assert "raise the reward to 3.01 or more, or lower the estimate to 4 minutes" in low.text
    assert 'value="Yoghurt shelf"' in low.text and "R-01" in low.text  # nothing typed is lost
    unknown = app_client.post(
        "/console/campaigns/new", data=campaign_form(token, store_refs="R-00\nNOPE"), follow_redirects=False
    )
    assert unknown.status_code == 422 and "1 reference(s) are none of your stores: NOPE" in unknown.text
    dates = app_client.post(
        "/console/campaigns/new",
        data=campaign_form(token, starts_on="2027-02-01", ends_on="2027-01-01"),
        follow_redirects=False,
    )
    assert dates.status_code == 422 and 'id="e-ends_on"' in dates.text
    made = app_client.post("/console/campaigns/new", data=campaign_form(token), follow_redirects=False)
    assert made.status_code == 303, made.text
    campaign_id = made.headers["location"].split("/")[-1].split("?")[0]
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        campaign = session.get(Campaign, uuid.UUID(campaign_id))
        assert campaign is not None and campaign.organization_id == client.organization_id
        assert (campaign.reward_cents, campaign.slots_per_store, campaign.status) == (450, 2, "draft")
    searched = app_client.post(
        "/console/campaigns/new",
        data=campaign_form(token, stores="search", stores_search="Store 1"),
        follow_redirects=False,
    )
    assert searched.status_code == 303  # Store 1, Store 10, Store 11
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        counts = session.exec(select(Campaign).where(col(Campaign.organization_id) == client.organization_id))
        assert len(list(counts)) == 2


def test_a_double_sent_deposit_deposits_once(app_client: Any) -> None:
    client, _token = signed_in_client(app_client)
    page = app_client.get("/console/money")
    token, key = csrf_of(page.text), re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key is not None
    sent = {"csrf_token": token, "idempotency_key": key.group(1), "amount": "1 250,50", "currency": "EUR"}
    for _ in range(2):
        answer = app_client.post("/console/money/deposits", data=sent, follow_redirects=False)
        assert answer.status_code == 303 and "notice=deposit_done" in answer.headers["location"]
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        deposits = list(
            session.exec(select(Deposit).where(Deposit.organization_id == client.organization_id))
        )
    assert [d.amount_cents for d in deposits] == [125050]
    assert 'id="available-EUR">1,250.50 EUR' in app_client.get("/console/money").text
    bad = app_client.post(
        "/console/money/deposits", data={**sent, "idempotency_key": "k" * 20, "amount": "12.345"}
    )
    assert bad.status_code == 422 and 'id="e-amount"' in bad.text and 'value="12.345"' in bad.text


def test_a_campaign_is_activated_paused_resumed_and_closed_with_its_money_shown(app_client: Any) -> None:
    client, token = signed_in_client(app_client)
    import_csv(app_client, token, GOOD_CSV)
    made = app_client.post("/console/campaigns/new", data=campaign_form(token), follow_redirects=False)
    base = made.headers["location"].split("?")[0]
    # 3 stores x 2 visits x (4.50 + 0.45 fee) = 29.70; nothing available yet.
    confirm = app_client.get(f"{base}/life/activate")
    assert 'id="hold">29.70 EUR' in confirm.text and 'id="short"' in confirm.text
    assert "/console/money?amount=29.70&amp;currency=EUR" in confirm.text
    short = app_client.post(f"{base}/life/activate", data={"csrf_token": token}, follow_redirects=False)
    assert "notice=activation_short" in short.headers["location"]
    money = app_client.get("/console/money")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', money.text)
    assert key is not None
    app_client.post(
        "/console/money/deposits",
        data={"csrf_token": token, "idempotency_key": key.group(1), "amount": "100", "currency": "EUR"},
    )
    assert 'id="short"' not in app_client.get(f"{base}/life/activate").text
    assert app_client.post(f"{base}/life/activate", data={}, follow_redirects=False).status_code == 403
    for action, status in (("activate", "active"), ("pause", "paused"), ("resume", "active")):
        done = app_client.post(f"{base}/life/{action}", data={"csrf_token": token}, follow_redirects=False)
        assert done.status_code == 303 and "notice=campaign_" in done.headers["location"], action
        assert f'<span class="tag">{status}</span>' in app_client.get(base).text
    again = app_client.post(f"{base}/life/resume", data={"csrf_token": token}, follow_redirects=False)
    assert "notice=invalid_campaign_transition" in again.headers["location"]
    closing = app_client.get(f"{base}/life/close")
    assert 'id="returned">29.70 EUR' in closing.text  # no slot taken: all of it comes back
    app_client.post(f"{base}/life/close", data={"csrf_token": token})
    assert 'id="available-EUR">100.00 EUR' in app_client.get("/console/money").text
    assert 'id="escrow-EUR">0.00 EUR' in app_client.get("/console/money").text
    # Another organization's client sees none of it; a reviewer is turned away.
    other = make_account(runtime_of(app_client), Role.client)
    sign_in(app_client, other)
    assert app_client.get(f"{base}/life/close").status_code == 404
    reviewer = make_account(runtime_of(app_client), Role.reviewer)
    sign_in(app_client, reviewer)
    assert app_client.get("/console/stores").status_code == 403
    assert client.organization_id != other.organization_id


def test_reference_photos_are_added_read_and_removed_from_the_campaign_page(app_client: Any) -> None:
    _client, token = signed_in_client(app_client)
    import_csv(app_client, token, GOOD_CSV)
    made = app_client.post("/console/campaigns/new", data=campaign_form(token), follow_redirects=False)
    base = made.headers["location"].split("?")[0]
    assert 'id="f-photos"' in app_client.get(base).text

    def send(*files: tuple[str, bytes, str], csrf: str = token) -> Any:
        return app_client.post(
            f"{base}/references",
            data={"csrf_token": csrf},
            files=[("photos", f) for f in files],
            follow_redirects=False,
        )

    assert (
        send(("shelf.jpg", real("shelf_grocery_milk_001.jpg"), "image/jpeg"), csrf="forged").status_code
        == 403
    )
    assert "notice=reference_type" in send(("notes.txt", b"not a photo", "text/plain")).headers["location"]
    added = send(
        ("shelf.jpg", real("shelf_grocery_milk_001.jpg"), "image/jpeg"),
        ("orange.jpg", real("shelf_grocery_orange_juice_001.jpg"), "image/jpeg"),
    )
    assert "notice=reference_added" in added.headers["location"]
    runtime_of(app_client).jobs.join()
    shown = app_client.get(base).text
    assert shown.count('data-status="ready"') == 2, shown[shown.find("references-h") :][:2000]
    assert shown.count('alt="Reference photo') == 2
    ids = re.findall(r"/references/([0-9a-f-]{36})/delete", shown)
    removed = app_client.post(
        f"{base}/references/{ids[0]}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert "notice=reference_deleted" in removed.headers["location"]
    assert app_client.get(base).text.count('data-status="ready"') == 1
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        listed = list(session.exec(select(ReferencePhoto).where(col(ReferencePhoto.deleted_at).is_(None))))
    assert len(listed) == 1 and listed[0].features is not None
