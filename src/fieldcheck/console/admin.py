"""The admins' pages: overview (money, ledger verify), users and organizations, payouts, reversals.

Each page calls the services the admin API calls (auth's accounts, the organizations, the review
service's reversal, the ledger's figures), with the signed-in admin as the actor, so it can do
what the API allows and nothing more.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import urlencode

from litestar import Controller, Request
from litestar.di import NamedDependency
from litestar.params import FromPath, SkipValidation
from litestar.response import Redirect, Stream, Template
from pydantic import ValidationError
from sqlmodel import Session

from fieldcheck.assignments.service import context_of
from fieldcheck.auth import service as auth
from fieldcheck.auth.models import Role, User
from fieldcheck.auth.schemas import UserCreate
from fieldcheck.auth.security import AccountGate, Passwords, check_password_policy
from fieldcheck.console.forms import Form, field_errors, problem_errors, stripped
from fieldcheck.console.pages import SECURITY_HEADERS, check_csrf, page, redirect, viewer_of
from fieldcheck.console.sessions import Viewer
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable
from fieldcheck.jobs import enqueue
from fieldcheck.ledger import service as ledger
from fieldcheck.ledger.service import AccountKind, PayoutStatus
from fieldcheck.organizations import service as organizations
from fieldcheck.organizations.models import Organization
from fieldcheck.organizations.schemas import OrganizationCreate
from fieldcheck.reviews import service as reviews
from fieldcheck.reviews.schemas import ReversalIn
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import get, post

USERS_PER_PAGE = 50
REJECTIONS_PER_PAGE = 30
REJECTIONS_ON_OVERVIEW = 5
BATCHES_SHOWN = 50
PAYOUTS_SHOWN = 100
# The scheduler's hourly check of the platform's money (fieldcheck.money): the same job, asked for
# now. The console sits below fieldcheck.money in the layers, so it names the job, not the function.
VERIFY_JOB = "money.verify"
# How long the verification page waits for the job's report, reloading itself, before saying so.
VERIFY_WAIT = timedelta(minutes=2)
VERIFY_RELOAD_S = 2
# A batch file's type, by its key's extension (the payout provider decides the format).
FILE_TYPES = {".xml": "application/xml", ".csv": "text/csv"}
CHUNK_BYTES = 64 * 1024
# What the overview shows per currency, from the ledger's accounts (a positive figure each: the
# platform's compensation account and the external ones run negative by design).
MONEY_FIGURES = (
    ("Fee income", AccountKind.platform_fees, 1),
    ("Held in escrow for campaigns", AccountKind.client_escrow, 1),
    ("Clients' money not committed", AccountKind.client_available, 1),
    ("Workers' balances", AccountKind.worker_earned, 1),
    ("Payouts in transit", AccountKind.payouts_in_transit, 1),
    ("Paid out to workers", AccountKind.paid_out, 1),
    ("Paid in by clients", AccountKind.funding, -1),
    ("Rewards the platform paid itself", AccountKind.platform_compensation, -1),
)
ROLES = [role.value for role in Role]
ROLE_OPTIONS = [
    (Role.worker.value, "worker"),
    (Role.client.value, "client (acts for an organization)"),
    (Role.reviewer.value, "reviewer"),
    (Role.admin.value, "admin"),
]


def money(cents: int, currency: str) -> str:
    """Integer minor units as money, exactly: 123456 EUR -> 1,234.56 EUR."""
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole:,}.{part:02d} {currency}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "\u2013"


def _context(**values: Any) -> dict[str, Any]:
    """What every admin page's template may call."""
    return {"money": money, "when": _when, **values}


# Overview and ledger verification -----------------------------------------------------------
class AdminOverviewController(Controller):
    path = "/console/admin"
    include_in_schema = False

    @get("/")
    def overview(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, Role.admin)
        totals = ledger.totals_by_kind(db_session)
        currencies = [
            (
                currency,
                [(label, sign * kinds.get(kind, 0)) for label, kind, sign in MONEY_FIGURES],
            )
            for currency, kinds in totals.items()
        ]
        rejections, more = reviews.reversible_rejections(
            db_session, limit=REJECTIONS_ON_OVERVIEW, cursor=None
        )
        return page(
            "admin.html.j2",
            request,
            viewer,
            **_context(
                currencies=currencies,
                payouts={status.value: count for status, count in ledger.payout_counts(db_session).items()},
                waiting=reviews.waiting_counts(db_session),
                last=ledger.last_verification(db_session),
                rejections=_rejection_rows(db_session, rejections),
                more_rejections=more is not None,
            ),
        )

    @post("/verify", status_code=303)
    def verify(
        self, request: Request[Any, Any, Any], data: Form, db_session: NamedDependency[Session]
    ) -> Redirect:
        """Run `fieldcheck ledger verify` now: the scheduler's verification job, asked for at once
        (its report is kept like a scheduled one's); the next page shows it when it is done."""
        viewer = viewer_of(request, db_session, Role.admin)
        check_csrf(viewer, request, data)
        asked = utcnow()
        enqueue(db_session, VERIFY_JOB)
        return redirect("/console/admin/verify", after=asked.isoformat())

    @get("/verify")
    def verification(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]
    ) -> Template | Redirect:
        viewer = viewer_of(request, db_session, Role.admin)
        try:
            asked = datetime.fromisoformat(request.query_params.get("after", ""))
        except ValueError:
            return redirect("/console/admin")
        if asked.tzinfo is None:
            asked = asked.replace(tzinfo=UTC)
        report = ledger.verification_since(db_session, asked)
        waited = utcnow() - asked
        return page(
            "admin_verify.html.j2",
            request,
            viewer,
            **_context(
                report=report,
                asked=asked,
                waiting=report is None and timedelta(0) <= waited < VERIFY_WAIT,
                reload_s=VERIFY_RELOAD_S,
            ),
        )


# Users and organizations --------------------------------------------------------------------
def _new_password(email: str) -> str:
    """A random first password the password rules accept."""
    while True:
        candidate = secrets.token_urlsafe(15)
        try:
            check_password_policy(candidate, email=email)
        except Unprocessable:
            continue
        return candidate


class AdminUsersController(Controller):
    path = "/console/admin/users"
    include_in_schema = False

    @get("/")
    def users(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, Role.admin)
        params = request.query_params
        role, active = str(params.get("role") or ""), str(params.get("active") or "")
        filters = {
            "email": str(params.get("email") or "").strip()[:320],
            "role": role if role in ROLES else "",
            "active": active if active in ("yes", "no") else "",
        }
        listed, next_cursor = auth.list_users(
            db_session,
            role=Role(filters["role"]) if filters["role"] else None,
            email=filters["email"] or None,
            active={"yes": True, "no": False}.get(filters["active"]),
            limit=USERS_PER_PAGE,
            cursor=params.get("cursor") or None,
        )
        names = {o.id: o.name for o in organizations.list_organizations(db_session)}
        kept = {k: v for k, v in filters.items() if v}
        return page(
            "admin_users.html.j2",
            request,
            viewer,
            **_context(
                users=listed,
                organizations=names,
                filters=filters,
                roles=ROLES,
                next_page=f"?{urlencode({**kept, 'cursor': next_cursor})}" if next_cursor else None,
                first_page=f"?{urlencode(kept)}" if params.get("cursor") else None,
            ),
        )

    @get("/new")
    def new_user(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, Role.admin)
        chosen = request.query_params.get("organization") or ""
        values = {"role": "client", "organization_id": chosen} if chosen else {"role": "worker"}
        return _new_user_page(request, viewer, db_session, values=values)

    @post("/", status_code=201)
    def create(
        self,
        request: Request[Any, Any, Any],
        data: Form,
        db_session: NamedDependency[Session],
        passwords: NamedDependency[SkipValidation[Passwords]],
    ) -> Template:
        """Create an account through the API's rules; its first password is shown once, here."""
        viewer = viewer_of(request, db_session, Role.admin)
        check_csrf(viewer, request, data)
        values = {n: stripped(data, n) for n in ("role", "email", "display_name", "organization_id")}
        typed = stripped(data, "password")
        errors: dict[str, str] = {}
        try:
            body = UserCreate(
                email=values["email"],
                password=typed or _new_password(values["email"]),
                role=values["role"],  # pydantic parses the role's value
                organization_id=values["organization_id"] or None,
                display_name=values["display_name"] or None,
            )
        except ValidationError as exc:
            errors = field_errors(exc, fallback="form")
        else:
            try:
                user = auth.create_user(
                    db_session,
                    passwords,
                    email=str(body.email),
                    password=body.password,
                    role=body.role,
                    display_name=body.display_name,
                    organization_id=body.organization_id,
                )
            except (Conflict, Unprocessable) as exc:
                errors = problem_errors(exc, fallback="email" if exc.code == "email_taken" else "form")
        if errors:
            return _new_user_page(request, viewer, db_session, values=values, errors=errors, status=422)
        found = db_session.get(Organization, user.organization_id) if user.organization_id else None
        organization = found.name if found else None
        return page(
            "admin_user_created.html.j2",
            request,
            viewer,
            status_code=201,
            **_context(user=user, password=body.password, generated=not typed, organization=organization),
        )

    @get("/{user_id:uuid}/deactivate")
    def confirm_deactivation(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
    ) -> Template:
        return self._confirmation(request, db_session, user_id, active=False)

    @get("/{user_id:uuid}/reactivate")
    def confirm_reactivation(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
    ) -> Template:
        return self._confirmation(request, db_session, user_id, active=True)

    def _confirmation(
        self, request: Request[Any, Any, Any], db_session: Session, user_id: uuid.UUID, *, active: bool
    ) -> Template:
        viewer = viewer_of(request, db_session, Role.admin)
        user = _user(db_session, user_id)
        return page(
            "admin_user_confirm.html.j2",
            request,
            viewer,
            **_context(user=user, active=active, own=user.id == viewer.user.id),
        )

    @post("/{user_id:uuid}/deactivate", status_code=303)
    def deactivate(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
        account_gate: NamedDependency[SkipValidation[AccountGate]],
    ) -> Redirect:
        return self._set_active(request, data, db_session, account_gate, user_id, active=False)

    @post("/{user_id:uuid}/reactivate", status_code=303)
    def reactivate(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
        account_gate: NamedDependency[SkipValidation[AccountGate]],
    ) -> Redirect:
        return self._set_active(request, data, db_session, account_gate, user_id, active=True)

    def _set_active(
        self,
        request: Request[Any, Any, Any],
        data: dict[str, Any],
        db_session: Session,
        account_gate: AccountGate,
        user_id: uuid.UUID,
        *,
        active: bool,
    ) -> Redirect:
        """As the API does: commit, then make this process's cache forget the account (other
        processes within seconds); deactivation ends every token and console session at once."""
        viewer = viewer_of(request, db_session, Role.admin)
        check_csrf(viewer, request, data)
        try:
            user = auth.set_active(db_session, actor=viewer.principal, user_id=user_id, active=active)
        except Conflict as exc:  # their own account, or one its owner closed
            db_session.rollback()
            return redirect("/console/admin/users", notice=exc.code)
        email = user.email
        db_session.commit()
        account_gate.forget(user_id)
        return redirect(
            "/console/admin/users", notice="user_reactivated" if active else "user_deactivated", email=email
        )


def _user(session: Session, user_id: uuid.UUID) -> User:
    user = auth.users_by_id(session, [user_id]).get(user_id)
    if user is None:
        raise NotFound("no account has this id", code="user_not_found")
    return user


def _new_user_page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    session: Session,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    return page(
        "admin_user_new.html.j2",
        request,
        viewer,
        status_code=status,
        **_context(
            values=values,
            errors=errors or {},
            role_options=ROLE_OPTIONS,
            organization_options=[(str(o.id), o.name) for o in organizations.list_organizations(session)],
        ),
    )


class AdminOrganizationsController(Controller):
    path = "/console/admin/organizations"
    include_in_schema = False

    @post("/", status_code=303)
    def create(
        self, request: Request[Any, Any, Any], data: Form, db_session: NamedDependency[Session]
    ) -> Redirect | Template:
        """A client organization; the account form comes back with it chosen."""
        viewer = viewer_of(request, db_session, Role.admin)
        check_csrf(viewer, request, data)
        name = stripped(data, "name")
        try:
            body = OrganizationCreate(name=name)
        except ValidationError as exc:
            errors = {"organization_name": next(iter(field_errors(exc, fallback="form").values()))}
            return _new_user_page(
                request,
                viewer,
                db_session,
                values={"role": "client", "organization_name": name},
                errors=errors,
                status=422,
            )
        organization = organizations.create_organization(db_session, name=body.name)
        return redirect(
            "/console/admin/users/new", notice="organization_created", organization=str(organization.id)
        )


# Payouts ------------------------------------------------------------------------------------
class AdminPayoutsController(Controller):
    path = "/console/admin/payouts"
    include_in_schema = False

    @get("/")
    def payouts(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, Role.admin)
        requested = ledger.payouts_in_status(db_session, PayoutStatus.requested, limit=PAYOUTS_SHOWN)
        failed = ledger.payouts_in_status(db_session, PayoutStatus.failed, limit=PAYOUTS_SHOWN)
        workers = auth.users_by_id(db_session, [p.worker_id for p in requested + failed])
        return page(
            "admin_payouts.html.j2",
            request,
            viewer,
            **_context(
                counts={status.value: count for status, count in ledger.payout_counts(db_session).items()},
                batches=ledger.payout_batches(db_session, limit=BATCHES_SHOWN),
                requested=requested,
                failed=failed,
                workers={i: u.email for i, u in workers.items()},
                shown=PAYOUTS_SHOWN,
                batches_shown=BATCHES_SHOWN,
                file_link=lambda key: f"/console/admin/payouts/file?{urlencode({'key': key})}",
            ),
        )

    @get("/file")
    def batch_file(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[Session],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
    ) -> Stream:
        """A batch's file, from storage through the console (only keys payouts were sent under)."""
        viewer_of(request, db_session, Role.admin)
        key = request.query_params.get("key") or ""
        if not key or len(key) > 300 or not ledger.is_payout_batch(db_session, key):
            raise NotFound("no payout batch has this key", code="batch_not_found")
        info = storage.head(key)
        if info is None:
            raise NotFound("this batch has no file in storage (none is written when every payout failed)")
        name = PurePosixPath(key).name
        return Stream(
            _chunks(storage.open(key)),
            media_type=FILE_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream"),
            headers={
                **SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="{name}"',
                "Content-Length": str(info.size),
            },
        )


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


# Reversing a rejection ----------------------------------------------------------------------
def _rejection_rows(session: Session, rejections: list[reviews.Rejection]) -> list[dict[str, Any]]:
    """Each rejection with its campaign, store and worker, for a table."""
    contexts = context_of(session, [r.assignment for r in rejections])
    workers = auth.users_by_id(session, [r.assignment.worker_id for r in rejections])
    rows = []
    for rejection in rejections:
        _task, campaign, store = contexts[rejection.assignment.task_id]
        worker = workers.get(rejection.assignment.worker_id)
        rows.append(
            {
                "rejection": rejection,
                "campaign": campaign.title,
                "store": store.name,
                "worker": worker.email if worker else str(rejection.assignment.worker_id),
            }
        )
    return rows


class AdminRejectionsController(Controller):
    path = "/console/admin/rejections"
    include_in_schema = False

    @get("/")
    def rejections(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]
    ) -> Template | Redirect:
        viewer = viewer_of(request, db_session, Role.admin)
        wanted = (request.query_params.get("assignment") or "").strip()
        errors: dict[str, str] = {}
        if wanted:
            try:
                return redirect(f"/console/admin/rejections/{uuid.UUID(wanted)}")
            except ValueError:
                errors["assignment"] = "not an assignment id (a UUID such as 0a1b2c3d-…)"
        found, next_cursor = reviews.reversible_rejections(
            db_session, limit=REJECTIONS_PER_PAGE, cursor=request.query_params.get("cursor") or None
        )
        return page(
            "admin_rejections.html.j2",
            request,
            viewer,
            status_code=422 if errors else 200,
            **_context(
                rows=_rejection_rows(db_session, found),
                next_cursor=next_cursor,
                errors=errors,
                values={"assignment": wanted},
            ),
        )

    @get("/{assignment_id:uuid}")
    def rejection(
        self,
        request: Request[Any, Any, Any],
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
    ) -> Template | Redirect:
        viewer = viewer_of(request, db_session, Role.admin)
        return self._confirmation(request, viewer, db_session, assignment_id, values={}, errors={})

    def _confirmation(
        self,
        request: Request[Any, Any, Any],
        viewer: Viewer,
        session: Session,
        assignment_id: uuid.UUID,
        *,
        values: dict[str, str],
        errors: dict[str, str],
    ) -> Template | Redirect:
        try:
            rejection = reviews.rejection_of(session, assignment_id)
        except Conflict as exc:
            return redirect("/console/admin/rejections", notice=exc.code)
        return page(
            "admin_reversal.html.j2",
            request,
            viewer,
            status_code=422 if errors else 200,
            **_context(row=_rejection_rows(session, [rejection])[0], values=values, errors=errors),
        )

    @post("/{assignment_id:uuid}", status_code=303)
    def reverse(
        self,
        request: Request[Any, Any, Any],
        assignment_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
    ) -> Redirect | Template:
        """Approve and pay rejected work, with the reason the worker will read (the API's rules)."""
        viewer = viewer_of(request, db_session, Role.admin)
        check_csrf(viewer, request, data)
        values = {"reason": stripped(data, "reason")}
        errors: dict[str, str] = {}
        try:
            body = ReversalIn(reason=values["reason"])
        except ValidationError as exc:
            errors = field_errors(exc, fallback="form")
        if stripped(data, "confirm") != "yes":
            errors["confirm"] = "tick this box to confirm: the work is approved and its reward paid"
        if errors:
            return self._confirmation(
                request, viewer, db_session, assignment_id, values=values, errors=errors
            )
        try:
            with db_session.begin_nested():
                reviews.reverse_rejection(
                    db_session, admin_id=viewer.user.id, assignment_id=assignment_id, reason=body.reason
                )
        except Conflict as exc:  # decided meanwhile (reversed by someone else, or a final appeal)
            return redirect("/console/admin/rejections", notice=exc.code)
        return redirect("/console/admin/rejections", notice="rejection_reversed")


ROUTES: list[Any] = [
    AdminOverviewController,
    AdminUsersController,
    AdminOrganizationsController,
    AdminPayoutsController,
    AdminRejectionsController,
]
