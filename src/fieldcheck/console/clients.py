"""The clients' pages before the results: stores, a new campaign, money, a campaign's life.

Each page calls the services the API calls, with the signed-in client's organization, so it can do
what the API allows and nothing more; the server checks everything again that a page's script
shows as the client types (the hourly rate against the floor, the escrow that activation holds).
"""

from __future__ import annotations

import io
import math
import secrets
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import anyio
from litestar import Controller, Request, Response
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, SkipValidation
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlmodel import Session

from fieldcheck import idempotency
from fieldcheck.auth.models import Role
from fieldcheck.campaigns import escrow
from fieldcheck.campaigns import service as campaigns
from fieldcheck.campaigns.models import Campaign
from fieldcheck.campaigns.schemas import CampaignCreate, PhotoRules
from fieldcheck.console.forms import Form, field_errors, problem_errors, stripped
from fieldcheck.console.pages import SECURITY_HEADERS, check_csrf, page, redirect, viewer_of
from fieldcheck.console.sessions import Viewer
from fieldcheck.errors import Conflict, Unprocessable
from fieldcheck.ledger import service as ledger
from fieldcheck.ledger.service import PaymentProvider, escrow_position
from fieldcheck.references import service as references
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.stores import service as stores
from fieldcheck.stores.schemas import StoreCreate
from fieldcheck.tasks import service as tasks
from fieldcheck.web import get, post

STORES_PER_PAGE = 50
DEPOSITS_SHOWN = 20
SAMPLE_CSV = (
    "external_ref,name,address,lat,lon,geofence_m\r\n"
    "S-0001,Supermarket Rivoli,12 rue de Rivoli 75004 Paris,48.8556,2.3572,150\r\n"
    "S-0002,Hypermarket Nord,2 avenue du Nord 59000 Lille,50.6292,3.0573,\r\n"
)


def _cents(typed: str) -> int | None:
    """An amount as people type it (12, 12.5, 12,50) in cents; None when it is not one."""
    try:
        amount = Decimal(typed.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        return None
    return int(amount * 100)


# Stores ----------------------------------------------------------------------------------------
class StoreConsoleController(Controller):
    path = "/console/stores"
    include_in_schema = False

    @get("/")
    def stores(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        return self._page(request, db_session, viewer)

    def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: Session,
        viewer: Viewer,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        organization_id = viewer.principal.require_organization()
        search = request.query_params.get("q", "").strip()
        total = stores.count_stores(db_session, organization_id)
        listed, next_cursor = stores.list_stores(
            db_session,
            organization_id,
            limit=STORES_PER_PAGE,
            cursor=request.query_params.get("cursor"),
            search=search or None,
        )
        return page(
            "stores.html.j2",
            request,
            viewer,
            status_code=status_code,
            stores=listed,
            next_cursor=next_cursor,
            search=search,
            total=total,
            matching=stores.count_stores(db_session, organization_id, search) if search else total,
            created=request.query_params.get("created"),
            updated=request.query_params.get("updated"),
            **{"values": {}, "errors": {}, "import_errors": None, **context},
        )

    @get("/sample.csv")
    def sample(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]
    ) -> Response[bytes]:
        viewer_of(request, db_session, Role.client)
        return Response(
            SAMPLE_CSV.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={**SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="stores-sample.csv"'},
        )

    @get("/count")
    def count(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Response[Any]:
        """How many stores a search finds (the new-campaign form's live total)."""
        viewer = viewer_of(request, db_session, Role.client)
        found = stores.count_stores(
            db_session, viewer.principal.require_organization(), request.query_params.get("q") or None
        )
        return Response({"count": found}, headers=SECURITY_HEADERS)

    @post("/", status_code=303)
    def add(
        self, request: Request[Any, Any, Any], data: Form, db_session: NamedDependency[Session]
    ) -> Redirect | Template:
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        values = {
            k: stripped(data, k) for k in ("name", "external_ref", "address", "lat", "lon", "geofence_m")
        }
        errors: dict[str, str] = {}
        numbers: dict[str, Any] = {}
        for name in ("lat", "lon"):
            try:
                numbers[name] = float(values[name].replace(",", "."))
            except ValueError:
                errors[name] = "a number in degrees, such as 48.8566"
        if values["geofence_m"]:
            try:
                numbers["geofence_m"] = int(values["geofence_m"])
            except ValueError:
                errors["geofence_m"] = "a whole number of metres"
        if not errors:
            try:
                store = StoreCreate(
                    name=values["name"],
                    external_ref=values["external_ref"] or None,
                    address=values["address"] or None,
                    **numbers,
                )
                with db_session.begin_nested():
                    stores.create_store(db_session, viewer.principal.require_organization(), store)
            except ValidationError as exc:
                errors = field_errors(exc)
            except Conflict as exc:
                errors = {"external_ref": exc.detail}
        if errors:
            return self._page(request, db_session, viewer, status_code=422, values=values, errors=errors)
        return redirect("/console/stores", notice="store_added", q=values["external_ref"] or values["name"])

    @post("/import", status_code=303, request_max_body_size=None)
    async def import_csv(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Redirect | Template:
        """The same import as the API's (all or nothing); every bad line shown in a table."""
        form = await request.form()
        upload = form.get("file")
        content = (
            await upload.read(settings.store_import_max_bytes + 1) if isinstance(upload, UploadFile) else b""
        )

        def run() -> Redirect | Template:
            viewer = viewer_of(request, db_session, Role.client)
            check_csrf(viewer, request, {"csrf_token": form.get("csrf_token")})
            if not content:
                problems = [{"line": None, "field": "file", "message": "choose a CSV file first"}]
                return self._page(request, db_session, viewer, status_code=422, import_errors=problems)
            if len(content) > settings.store_import_max_bytes:
                limit = settings.store_import_max_bytes // 1_000_000
                problems = [{"line": None, "field": "file", "message": f"the file is over {limit} MB"}]
                return self._page(request, db_session, viewer, status_code=422, import_errors=problems)
            try:
                with db_session.begin_nested():
                    created, updated = stores.import_stores(
                        db_session,
                        viewer.principal.require_organization(),
                        io.BytesIO(content),
                        max_rows=settings.store_import_max_rows,
                    )
            except Unprocessable as exc:
                problems = exc.extra.get("errors") or [{"line": None, "field": None, "message": exc.detail}]
                return self._page(
                    request,
                    db_session,
                    viewer,
                    status_code=422,
                    import_errors=problems,
                    import_detail=exc.detail,
                )
            return redirect(
                "/console/stores", notice="stores_imported", created=str(created), updated=str(updated)
            )

        return await anyio.to_thread.run_sync(run)


# A new campaign ---------------------------------------------------------------------------------
CAMPAIGN_FIELDS = (
    "title",
    "instructions",
    "reward",
    "currency",
    "estimated_minutes",
    "slots_per_store",
    "starts_on",
    "ends_on",
    "min_photos",
    "max_photos",
    "min_short_side_px",
    "stores",
    "stores_search",
    "store_refs",
)
# The API's field names, as the form names them.
FORM_NAME = {
    "reward_cents": "reward",
    "starts_at": "starts_on",
    "ends_at": "ends_on",
    "photo_rules.min_photos": "min_photos",
    "photo_rules.max_photos": "max_photos",
    "photo_rules.min_short_side_px": "min_short_side_px",
    "store_ids": "stores",
}


def floor_hint(reward_cents: int, minutes: int, floor_cents: int) -> dict[str, int] | None:
    """Under the floor: the smallest reward, and the longest estimate, that would meet it."""
    if reward_cents * 60 >= floor_cents * minutes:
        return None
    return {
        "min_reward_cents": math.ceil(floor_cents * minutes / 60),
        "max_minutes": reward_cents * 60 // floor_cents,
    }


class NewCampaignController(Controller):
    path = "/console/campaigns/new"
    include_in_schema = False

    @get("/")
    def form(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        defaults = {
            "currency": next(iter(sorted(settings.pay_floor_cents_per_hour))),
            "estimated_minutes": "15",
            "slots_per_store": "1",
            "min_photos": str(PhotoRules().min_photos),
            "max_photos": str(PhotoRules().max_photos),
            "min_short_side_px": str(PhotoRules().min_short_side_px),
            "stores": "all",
        }
        return self._page(request, db_session, settings, viewer, values=defaults, errors={})

    def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: Session,
        settings: Settings,
        viewer: Viewer,
        *,
        values: dict[str, str],
        errors: dict[str, str],
        status_code: int = 200,
        hint: dict[str, Any] | None = None,
    ) -> Template:
        return page(
            "campaign_new.html.j2",
            request,
            viewer,
            status_code=status_code,
            values=values,
            errors=errors,
            hint=hint,
            floors=settings.pay_floor_cents_per_hour,
            fee_bps=settings.platform_fee_bps,
            store_total=stores.count_stores(db_session, viewer.principal.require_organization()),
            max_stores=settings.campaign_max_stores,
        )

    @post("/", status_code=303)
    def create(
        self,
        request: Request[Any, Any, Any],
        data: Form,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Redirect | Template:
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        organization_id = viewer.principal.require_organization()
        values = {name: stripped(data, name) for name in CAMPAIGN_FIELDS}
        values["instructions"] = stripped(data, "instructions")
        errors: dict[str, str] = {}
        reward = _cents(values["reward"])
        if reward is None or reward <= 0:
            errors["reward"] = "an amount above 0, such as 4.50"
        numbers: dict[str, int] = {}
        for name in ("estimated_minutes", "slots_per_store", "min_photos", "max_photos", "min_short_side_px"):
            try:
                numbers[name] = int(values[name])
            except ValueError:
                errors[name] = "a whole number"
        dates: dict[str, datetime | None] = {}
        for name, api_name, shift in (("starts_on", "starts_at", 0), ("ends_on", "ends_at", 1)):
            try:
                day = date.fromisoformat(values[name]) if values[name] else None
            except ValueError:
                errors[name] = "a date such as 2027-01-31"
                continue
            # Dates are whole UTC days: a campaign ending on the 31st runs through that day.
            dates[api_name] = datetime.combine(day + timedelta(days=shift), time(), UTC) if day else None
        store_ids = self._stores(db_session, organization_id, values, errors)
        hint = None
        floor = settings.pay_floor_cents_per_hour.get(values["currency"])
        if floor is None:
            errors["currency"] = "one of " + ", ".join(sorted(settings.pay_floor_cents_per_hour))
        elif reward and numbers.get("estimated_minutes", 0) > 0:
            hint = floor_hint(reward, numbers["estimated_minutes"], floor)
            if hint is not None:
                errors["reward"] = (
                    f"below the floor of {floor / 100:.2f} {values['currency']} per hour: raise the reward to "
                    f"{hint['min_reward_cents'] / 100:.2f} or more, or lower the estimate to "
                    f"{hint['max_minutes']} minutes or less"
                )
        if not errors:
            try:
                created = CampaignCreate(
                    title=values["title"],
                    instructions=values["instructions"],
                    reward_cents=reward,
                    currency=values["currency"],
                    estimated_minutes=numbers["estimated_minutes"],
                    slots_per_store=numbers["slots_per_store"],
                    store_ids=store_ids,
                    photo_rules=PhotoRules(
                        min_photos=numbers["min_photos"],
                        max_photos=numbers["max_photos"],
                        min_short_side_px=numbers["min_short_side_px"],
                    ),
                    **dates,
                )
                with db_session.begin_nested():
                    campaign = campaigns.create_campaign(db_session, organization_id, created, settings)
                return redirect(f"/console/campaigns/{campaign.id}", notice="campaign_created")
            except ValidationError as exc:
                errors = field_errors(exc, FORM_NAME)
            except (Unprocessable, Conflict) as exc:
                errors = problem_errors(exc, FORM_NAME)
        return self._page(
            request, db_session, settings, viewer, values=values, errors=errors, status_code=422, hint=hint
        )

    @staticmethod
    def _stores(
        db_session: Session, organization_id: uuid.UUID, values: dict[str, str], errors: dict[str, str]
    ) -> list[uuid.UUID]:
        """The stores chosen: all of them, those a search finds, or a list of references."""
        if values["stores"] == "search":
            if not values["stores_search"]:
                errors["stores_search"] = "type part of a name, reference or address"
                return []
            found = stores.store_ids(db_session, organization_id, values["stores_search"])
            if not found:
                errors["stores_search"] = "no store matches this search"
            return found
        if values["stores"] == "refs":
            references = values["store_refs"].replace(",", "\n").replace(";", "\n").splitlines()
            found, unknown = stores.ids_by_reference(db_session, organization_id, references)
            if unknown:
                shown = ", ".join(unknown[:10]) + (
                    f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
                )
                errors["store_refs"] = f"{len(unknown)} reference(s) are none of your stores: {shown}"
            elif not found:
                errors["store_refs"] = "paste or upload one store reference a line"
            return found
        found = stores.store_ids(db_session, organization_id)
        if not found:
            errors["stores"] = "add stores first (Stores page)"
        return found


# Money -----------------------------------------------------------------------------------------
class MoneyConsoleController(Controller):
    path = "/console/money"
    include_in_schema = False

    @get("/")
    def money(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        return self._page(request, db_session, settings, viewer, values={}, errors={})

    def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: Session,
        settings: Settings,
        viewer: Viewer,
        *,
        values: dict[str, str],
        errors: dict[str, str],
        status_code: int = 200,
    ) -> Template:
        organization_id = viewer.principal.require_organization()
        deposits, next_cursor = ledger.list_deposits(
            db_session, organization_id, limit=DEPOSITS_SHOWN, cursor=request.query_params.get("cursor")
        )
        currencies = sorted(settings.pay_floor_cents_per_hour)
        return page(
            "money.html.j2",
            request,
            viewer,
            status_code=status_code,
            balances=sorted(ledger.organization_balance(db_session, organization_id).items()),
            deposits=deposits,
            next_cursor=next_cursor,
            currencies=currencies,
            # A new key for each form shown: a double click sends the same key twice, deposits once.
            deposit_key=secrets.token_urlsafe(24),
            values={"currency": request.query_params.get("currency") or currencies[0], **values},
            errors=errors,
            wanted=request.query_params.get("amount"),
        )

    @post("/deposits", status_code=303)
    def deposit(
        self,
        request: Request[Any, Any, Any],
        data: Form,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
        payments: NamedDependency[SkipValidation[PaymentProvider]],
    ) -> Redirect | Template:
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        values = {"amount": stripped(data, "amount"), "currency": stripped(data, "currency")}
        amount = _cents(values["amount"])
        if amount is None or amount <= 0:
            errors = {"amount": "an amount above 0, such as 500 or 1250.50"}
            return self._page(
                request, db_session, settings, viewer, values=values, errors=errors, status_code=422
            )
        key = idempotency.require_key(stripped(data, "idempotency_key"))
        body = {"amount_cents": amount, "currency": values["currency"]}
        fingerprint = idempotency.fingerprint("POST", "/console/money/deposits", body)
        try:
            replay = idempotency.claim(db_session, owner_id=viewer.user.id, key=key, request_hash=fingerprint)
        except Conflict:
            # The same form sent twice at once: the first one deposits; this one shows the result.
            return redirect("/console/money", notice="deposit_in_progress")
        if replay is not None:
            return redirect("/console/money", notice="deposit_done")
        try:
            with db_session.begin_nested():
                ledger.deposit(
                    db_session,
                    payments,
                    settings,
                    organization_id=viewer.principal.require_organization(),
                    amount_cents=amount,
                    currency=values["currency"],
                    idempotency_key=key,
                    actor_id=viewer.user.id,
                )
        except Unprocessable as exc:
            errors = {"amount": exc.detail}
            return self._page(
                request, db_session, settings, viewer, values=values, errors=errors, status_code=422
            )
        idempotency.record(db_session, owner_id=viewer.user.id, key=key, status_code=201, body=body)
        return redirect("/console/money", notice="deposit_done")


# A campaign's life -----------------------------------------------------------------------------
ACTIONS = {
    "activate": "Activate",
    "resume": "Resume",
    "pause": "Pause",
    "close": "Close",
}


class CampaignLifeController(Controller):
    """Activate, pause, resume, close: each shown first with what it does to the money."""

    path = "/console/campaigns/{campaign_id:uuid}/life"
    include_in_schema = False

    @get("/{action:str}")
    def confirm(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[uuid.UUID],
        action: FromPath[str],
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        organization_id = viewer.principal.require_organization()
        campaign = campaigns.get_campaign(db_session, organization_id, campaign_id)
        if action not in ACTIONS:
            raise Unprocessable(f"unknown action {action!r}", code="invalid_action")
        available = ledger.organization_balance(db_session, organization_id).get(campaign.currency, {})
        return page(
            "campaign_life.html.j2",
            request,
            viewer,
            campaign=campaign,
            action=action,
            label=ACTIONS[action],
            available_cents=available.get("available", 0),
            **money_effect(db_session, campaign, action, settings),
        )

    @post("/{action:str}", status_code=303)
    def act(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[uuid.UUID],
        action: FromPath[str],
        data: Form,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        if action not in ACTIONS:
            raise Unprocessable(f"unknown action {action!r}", code="invalid_action")
        target = f"/console/campaigns/{campaign_id}"
        try:
            with db_session.begin_nested():
                campaigns.change_status(
                    db_session,
                    viewer.principal.require_organization(),
                    campaign_id,
                    "activate" if action == "resume" else action,
                    settings,
                )
        except (Conflict, Unprocessable) as exc:
            notice = {
                "insufficient_funds": "activation_short",
                "pay_below_floor": "activation_below_floor",
            }.get(exc.code, "invalid_campaign_transition")
            return redirect(target, notice=notice)
        done = {"activate": "activated", "resume": "resumed", "pause": "paused", "close": "closed_now"}
        return redirect(target, notice=f"campaign_{done[action]}")


def money_effect(session: Session, campaign: Campaign, action: str, settings: Settings) -> dict[str, Any]:
    """What an action does to the money: held at first activation, given back at closing."""
    counts = tasks.slots_of(session, campaign.id)
    slots = counts.total
    if action == "activate" and campaign.activated_at is None:
        fee = escrow.fee_per_slot(campaign.reward_cents, settings)
        return {"slots": slots, "fee_cents": fee, "hold_cents": slots * (campaign.reward_cents + fee)}
    if action == "close" and campaign.activated_at is not None:
        # Closing keeps what slots taken and not paid yet may still cost (escrow.slots_owed of a
        # closed campaign) and gives back the rest.
        position = escrow_position(session, campaign.id, campaign.currency)
        kept = max(counts.taken - position.releases, 0) * escrow.per_slot(campaign)
        return {"slots": slots, "returned_cents": max(position.held - kept, 0), "kept_cents": kept}
    return {"slots": slots}


# Reference photos -------------------------------------------------------------------------------
REFERENCE_NOTICES = {
    "unsupported_photo_type": "reference_type",
    "photo_too_large": "reference_too_large",
    "reference_limit_reached": "reference_limit",
}


class ReferencePhotosController(Controller):
    """The campaign's reference photos of the shelf, sent through the console: the server stores
    each file where the API's upload instruction would have put it, then reads it as the API does."""

    path = "/console/campaigns/{campaign_id:uuid}/references"
    include_in_schema = False

    @post("/", status_code=303, request_max_body_size=None)
    async def add(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        form = await request.form()
        files: list[tuple[str, bytes]] = []
        for upload in form.getall("photos") if hasattr(form, "getall") else []:
            if isinstance(upload, UploadFile):
                data = await upload.read(settings.photo_max_bytes + 1)
                if data:
                    files.append((upload.content_type or "application/octet-stream", data))

        def run() -> Redirect:
            viewer = viewer_of(request, db_session, Role.client)
            check_csrf(viewer, request, {"csrf_token": form.get("csrf_token")})
            organization_id = viewer.principal.require_organization()
            target = f"/console/campaigns/{campaign_id}"
            if not files:
                return redirect(target, notice="reference_none")
            for content_type, data in files:
                try:
                    with db_session.begin_nested():
                        reference, _ = references.create_upload(
                            db_session,
                            storage,
                            settings,
                            organization_id=organization_id,
                            campaign_id=campaign_id,
                            content_type=content_type,
                            size_bytes=len(data),
                        )
                        storage.put(reference.storage_key, data, content_type=reference.declared_type)
                        references.mark_uploaded(db_session, organization_id, campaign_id, reference.id)
                except (Unprocessable, Conflict) as exc:
                    return redirect(target, notice=REFERENCE_NOTICES.get(exc.code, "reference_refused"))
            return redirect(target, notice="reference_added")

        return await anyio.to_thread.run_sync(run)

    @post("/{reference_id:uuid}/delete", status_code=303)
    def delete(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[uuid.UUID],
        reference_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
    ) -> Redirect:
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        references.delete_reference(
            db_session, viewer.principal.require_organization(), campaign_id, reference_id
        )
        return redirect(f"/console/campaigns/{campaign_id}", notice="reference_deleted")


ROUTES: list[Any] = [
    ReferencePhotosController,
    StoreConsoleController,
    NewCampaignController,
    MoneyConsoleController,
    CampaignLifeController,
]
