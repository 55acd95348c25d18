from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from sqlmodel import func, select

from fieldcheck.auth.models import Role
from fieldcheck.geo import lat_band
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from tests.support.factories import make_account, make_campaign, make_store, problem, runtime_of

HEADER = "external_ref,name,address,lat,lon,geofence_m\n"


def store_count(client: Any) -> int:
    with runtime_of(client).db.transaction(read_only=True) as session:
        return int(session.exec(select(func.count()).select_from(Store)).one())


def import_csv(client: Any, account: Any, text: str | bytes, content_type: str = "text/csv") -> Any:
    body = text.encode() if isinstance(text, str) else text
    return client.post(
        "/api/v1/stores/import", content=body, headers={**account.headers, "Content-Type": content_type}
    )


def test_create_and_list_stores_page_by_page(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    client = make_account(runtime, Role.client)
    created = [make_store(app_client, client, name=f"Store {i}", external_ref=f"S{i}") for i in range(5)]
    assert created[0]["geofence_m"] == 150
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = app_client.get("/api/v1/stores", params=params, headers=client.headers).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [s["id"] for s in created]
    problem(
        app_client.get("/api/v1/stores", params={"cursor": "garbage!"}, headers=client.headers),
        422,
        "invalid_cursor",
    )
    problem(app_client.get("/api/v1/stores", params={"limit": 100000}, headers=client.headers), 400)


def test_stores_are_scoped_to_the_organization(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    mine, theirs = make_account(runtime, Role.client), make_account(runtime, Role.client)
    make_store(app_client, theirs, external_ref="X1")
    assert app_client.get("/api/v1/stores", headers=mine.headers).json()["items"] == []
    # The same reference in another organization is another store.
    make_store(app_client, mine, external_ref="X1")
    problem(
        app_client.post(
            "/api/v1/stores",
            json={"name": "Dup", "lat": 1, "lon": 1, "external_ref": "X1"},
            headers=mine.headers,
        ),
        409,
        "external_ref_taken",
    )
    worker = make_account(runtime, Role.worker)
    problem(app_client.get("/api/v1/stores", headers=worker.headers), 403, "wrong_role")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "A", "lat": 91, "lon": 0}, "lat"),
        ({"name": "A", "lat": 0, "lon": -181}, "lon"),
        ({"name": "A", "lat": "north", "lon": 0}, "lat"),
        ({"name": " ", "lat": 0, "lon": 0}, "name"),
        ({"name": "\u001e\u3000", "lat": 0, "lon": 0}, "name"),  # separators are blank too
        ({"name": "A", "lat": 0, "lon": 0, "geofence_m": 0}, "geofence_m"),
        ({"lat": 0, "lon": 0}, "name"),
    ],
)
def test_store_validation_names_the_field(app_client: Any, body: dict[str, Any], field: str) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    answer = problem(
        app_client.post("/api/v1/stores", json=body, headers=client.headers), 400, "validation_error"
    )
    assert field in {e["field"] for e in answer["errors"]}
    assert store_count(app_client) == 0


def test_import_creates_then_updates_by_reference(app_client: Any) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    first = import_csv(
        app_client,
        client,
        HEADER + 'S1,"Carrefour, Rivoli",1 rue de Rivoli,48.8606,2.3376,200\nS2,Monoprix,,48.85,2.35,\n',
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 2, "updated": 0}
    second = import_csv(
        app_client,
        client,
        "external_ref,name,address,lat,lon\nS1,Carrefour Rivoli,1 rue de Rivoli,48.861,2.338\nS3,Lidl,,48.8,2.3\n",
    )
    assert second.json() == {"created": 1, "updated": 1}
    stores = {
        s["external_ref"]: s for s in app_client.get("/api/v1/stores", headers=client.headers).json()["items"]
    }
    assert set(stores) == {"S1", "S2", "S3"}
    assert stores["S1"]["name"] == "Carrefour Rivoli"
    assert stores["S1"]["lat"] == 48.861
    assert stores["S1"]["geofence_m"] == 200  # kept: the second file has no geofence column
    assert stores["S2"]["geofence_m"] == 150
    assert stores["S2"]["address"] is None


def test_import_accepts_excel_exports(app_client: Any) -> None:
    """UTF-8 with a byte-order mark, semicolons, CRLF line ends, quoted new lines."""
    client = make_account(runtime_of(app_client), Role.client)
    text = '\ufeffexternal_ref;name;address;lat;lon\r\nE1;Épicerie "Chez Zoé";"2 place\r\nde la Gare";45.76;4.83\r\n'
    answer = import_csv(app_client, client, text.encode("utf-8"), "text/csv; charset=utf-8")
    assert answer.status_code == 200, answer.text
    store = app_client.get("/api/v1/stores", headers=client.headers).json()["items"][0]
    assert store["name"] == 'Épicerie "Chez Zoé"'
    assert store["address"] == "2 place\r\nde la Gare"


def test_import_as_a_multipart_file(app_client: Any) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    answer = app_client.post(
        "/api/v1/stores/import",
        files={"file": ("stores.csv", io.BytesIO((HEADER + "M1,Market,,10,10,\n").encode()), "text/csv")},
        headers=client.headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 1


def test_a_bad_file_lists_every_bad_line_and_imports_nothing(app_client: Any) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    make_store(app_client, client, external_ref="KEEP", name="Untouched")
    text = (
        HEADER
        + "A1,Good store,,48.1,2.1,\n"  # line 2: fine
        + "A2,,,48.1,2.1,\n"  # 3: name missing
        + "A3,Store,,91,2.1,\n"  # 4: lat out of range
        + "A4,Store,,48.1,-180.5,\n"  # 5: lon out of range
        + "A5,Store,,abc,2.1,\n"  # 6: not a number
        + "A1,Again,,48.1,2.1,\n"  # 7: duplicate reference
        + "A6,Store,,48.1\n"  # 8: too few fields
        + "A7,Store,,48.1,2.1,-5\n"  # 9: bad geofence
        + "KEEP,Renamed,,1,1,\n"  # 10: fine, but must not be applied
    )
    body = problem(import_csv(app_client, client, text), 422, "invalid_store_file")
    by_line = {(e["line"], e["field"]) for e in body["errors"]}
    assert by_line == {
        (3, "name"),
        (4, "lat"),
        (5, "lon"),
        (6, "lat"),
        (7, "external_ref"),
        (8, None),
        (9, "geofence_m"),
    }
    assert "line 2" in next(e["message"] for e in body["errors"] if e["line"] == 7)
    assert store_count(app_client) == 1
    items = app_client.get("/api/v1/stores", headers=client.headers).json()["items"]
    assert items[0]["name"] == "Untouched"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name,lat,lon\nA,1,1\n", "missing column(s): external_ref, address"),
        (HEADER.strip() + ",colour\n", "unknown column(s): colour"),
        ("", "empty"),
        (HEADER, "no stores"),
    ],
)
def test_header_problems(app_client: Any, text: str, expected: str) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    body = problem(import_csv(app_client, client, text), 422, "invalid_store_file")
    assert expected in (body["errors"][0]["message"] if body["errors"] else body["detail"])


def test_import_refuses_non_utf8_and_other_media_types(app_client: Any) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    latin1 = (HEADER + "L1,Café,,1,1,\n").encode("latin-1")
    body = problem(import_csv(app_client, client, latin1), 422, "invalid_store_file")
    assert "UTF-8" in body["errors"][0]["message"]
    problem(import_csv(app_client, client, "{}", "application/json"), 415, "unsupported_media_type")
    assert store_count(app_client) == 0


def test_moving_a_store_moves_its_tasks(app_client: Any) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    import_csv(app_client, client, HEADER + "S1,Store,,48.0,2.0,\n")
    store = app_client.get("/api/v1/stores", headers=client.headers).json()["items"][0]
    make_campaign(app_client, client, [store["id"]])
    import_csv(app_client, client, HEADER + "S1,Store,,45.5,4.5,\n")
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        task = session.exec(select(Task).where(Task.store_id == uuid.UUID(store["id"]))).one()
    assert (task.lat, task.lon, task.lat_band) == (45.5, 4.5, 910)
    import_csv(app_client, client, HEADER + "S1,Store,,-33.87,151.21,\n")
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        task = session.exec(select(Task).where(Task.store_id == uuid.UUID(store["id"]))).one()
    assert (task.lat, task.lon, task.lat_band) == (-33.87, 151.21, lat_band(-33.87)) == (-33.87, 151.21, -678)


def test_fifty_thousand_rows_in_one_request(app_client: Any) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    lines = [HEADER] + [
        f"R{i},Store {i},{i} Main Street,{-60 + i % 120}.{i % 997},{-170 + i % 340}.5,\n"
        for i in range(50_000)
    ]
    answer = import_csv(app_client, client, "".join(lines))
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json() == {"created": 50_000, "updated": 0}
    assert store_count(app_client) == 50_000
    again = import_csv(app_client, client, "".join(lines))
    assert again.json() == {"created": 0, "updated": 50_000}
    assert store_count(app_client) == 50_000


@pytest.mark.anyio
async def test_request_bodies_are_spooled_to_disk_not_held_in_memory() -> None:
    from fieldcheck.web import SPOOL_IN_MEMORY_BYTES, spool_body

    class FakeRequest:
        async def stream(self) -> Any:
            for _ in range(3):
                yield b"x" * SPOOL_IN_MEMORY_BYTES

    spooled = await spool_body(FakeRequest(), max_bytes=10 * SPOOL_IN_MEMORY_BYTES)
    assert spooled._rolled  # type: ignore[attr-defined]
    assert len(spooled.read()) == 3 * SPOOL_IN_MEMORY_BYTES
