"""The console's pages: sign-in, the reviewers' queue and items, the clients' campaigns and exports."""

from __future__ import annotations

import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from litestar import Controller, Request, Response, Router
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, SkipValidation
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from sqlmodel import Session, col, select

from fieldcheck.assignments.models import DELIVERED
from fieldcheck.assignments.schemas import CheckOut
from fieldcheck.assignments.service import context_of
from fieldcheck.auth import service as auth
from fieldcheck.auth.models import Role, User
from fieldcheck.auth.security import Passwords
from fieldcheck.campaigns import service as campaigns
from fieldcheck.campaigns.schemas import CampaignPayUpdate
from fieldcheck.console import admin as admin_pages
from fieldcheck.console import clients, sessions
from fieldcheck.console import webhooks as webhook_pages
from fieldcheck.console.forms import Form, many, one
from fieldcheck.console.pages import (
    NOTICES,
    SECURITY_HEADERS,
    LoginRequired,
    check_csrf,
    domain_error_handler,
    login_required_handler,
    page,
    redirect,
    viewer_of,
)
from fieldcheck.console.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Viewer
from fieldcheck.errors import BadRequest, Conflict, DomainError, TooManyRequests, Unprocessable
from fieldcheck.exports import service as exports
from fieldcheck.exports.models import ExportFormat
from fieldcheck.exports.views import export_out
from fieldcheck.i18n import DEFAULT_LANGUAGE, _, render_stored, text
from fieldcheck.references import service as references
from fieldcheck.references.views import reference_out
from fieldcheck.results import views as results
from fieldcheck.results.views import result_out, summary_out
from fieldcheck.reviews import service as reviews
from fieldcheck.reviews.models import REASON_TEXT, QueueReason, ReasonCode
from fieldcheck.reviews.oversight import report as oversight_report
from fieldcheck.reviews.schemas import ItemOut
from fieldcheck.reviews.views import item_detail
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import get, post

HERE = Path(__file__).parent
CONSOLE_TEMPLATES = HERE / "templates"
REVIEWERS = (Role.reviewer, Role.admin)
RESULTS_PER_PAGE = 24


def _safe_next(target: str | None) -> str | None:
    """Only a console path: never send a signed-in person to another site."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


class SignInController(Controller):
    path = "/console"
    include_in_schema = False

    @get("/")
    def home(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Redirect:
        viewer = viewer_of(request, db_session)
        return redirect(sessions.HOME_OF[viewer.role])

    @get("/login")
    def login_form(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = sessions.load(db_session, request.cookies.get(SESSION_COOKIE))
        return self._login_page(request, viewer=viewer)

    def _login_page(
        self,
        request: Request[Any, Any, Any],
        *,
        viewer: Viewer | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        token = sessions.new_token()
        response = page(
            "login.html.j2",
            request,
            viewer,
            status_code=status,
            login_csrf=token,
            error=error,
            next=_safe_next(request.query_params.get("next")) or "",
            email=request.query_params.get("email", ""),
        )
        response.cookies.append(
            Cookie(key=LOGIN_CSRF_COOKIE, value=token, max_age=3600, **self._cookie_flags(request))
        )
        return response

    @staticmethod
    def _cookie_flags(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return sessions.cookie_options(request.app.state.runtime.settings)

    @post("/login", status_code=303)
    def login(
        self,
        request: Request[Any, Any, Any],
        data: Form,
        db_session: NamedDependency[Session],
        passwords: NamedDependency[SkipValidation[Passwords]],
        settings: NamedDependency[Settings],
    ) -> Redirect | Template:
        if not sessions.csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), one(data, "login_csrf")):
            return self._login_page(request, error="The sign-in form expired; please try again.", status=403)
        address = request.client.host if request.client else "unknown"
        try:
            user = auth.authenticate(
                db_session,
                passwords,
                settings,
                email=one(data, "email"),
                password=one(data, "password"),
                address=address,
            )
        except auth.InvalidCredentials:
            db_session.commit()  # keep the recorded failure: it counts towards the throttle
            return self._login_page(request, error="The e-mail address or the password is wrong.", status=401)
        except TooManyRequests as exc:
            return self._login_page(request, error=f"{exc.detail.capitalize()}.", status=429)
        role = Role(user.role)
        if role not in sessions.HOME_OF:
            return self._login_page(
                request,
                error="The console is for reviewers and clients; workers use the fieldcheck app.",
                status=403,
            )
        token = sessions.start(db_session, user, settings, user_agent=request.headers.get("user-agent"))
        flags = self._cookie_flags(request)
        return redirect(
            _safe_next(one(data, "next")) or sessions.HOME_OF[role],
            cookies=[
                Cookie(
                    key=SESSION_COOKIE, value=token, max_age=settings.console_session_hours * 3600, **flags
                ),
                Cookie(key=LOGIN_CSRF_COOKIE, value="", max_age=0, **flags),
            ],
        )

    @post("/logout", status_code=303)
    def logout(
        self, request: Request[Any, Any, Any], data: Form, db_session: NamedDependency[Session]
    ) -> Redirect:
        viewer = sessions.load(db_session, request.cookies.get(SESSION_COOKIE))
        if viewer is not None:
            check_csrf(viewer, request, data)
            sessions.end(db_session, request.cookies.get(SESSION_COOKIE))
        flags = self._cookie_flags(request)
        return redirect(
            "/console/login",
            notice="signed_out",
            cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, **flags)],
        )


class ReviewConsoleController(Controller):
    path = "/console/review"
    include_in_schema = False

    @get("/")
    def queue(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, *REVIEWERS)
        wanted = request.query_params.get("reason") or ""
        reason = QueueReason(wanted) if wanted in QueueReason.__members__ else None
        items, counts = reviews.queue(db_session, reviewer_id=viewer.user.id, reason=reason, limit=100)
        details = {}
        if items:
            contexts = context_of(db_session, [i.assignment for i in items])
            details = {i.assignment.id: contexts[i.assignment.task_id] for i in items}
        return page(
            "review_queue.html.j2",
            request,
            viewer,
            items=items,
            details=details,
            counts=counts,
            reason=reason.value if reason else None,
            reasons=list(QueueReason),
        )

    @post("/next", status_code=303)
    def next_item(
        self,
        request: Request[Any, Any, Any],
        data: Form,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        """Claim the oldest item this reviewer may take (leaving out one skipped) and open it."""
        viewer = viewer_of(request, db_session, *REVIEWERS)
        check_csrf(viewer, request, data)
        skipped = one(data, "skip")
        if skipped:
            try:
                skipped_id = uuid.UUID(skipped)
            except ValueError:
                raise BadRequest(text(_("this item id is not valid")), code="invalid_item") from None
            reviews.release_claim(db_session, reviewer_id=viewer.user.id, assignment_id=skipped_id)
        return self._open_next(db_session, settings, viewer.user.id, exclude=skipped, notice=None)

    def _open_next(
        self,
        db_session: Session,
        settings: Settings,
        reviewer_id: uuid.UUID,
        *,
        exclude: str,
        notice: str | None,
    ) -> Redirect:
        items, _ = reviews.queue(db_session, reviewer_id=reviewer_id, reason=None, limit=10)
        for item in items:
            if str(item.assignment.id) == exclude:
                continue
            try:
                with db_session.begin_nested():
                    reviews.claim(
                        db_session, settings, reviewer_id=reviewer_id, assignment_id=item.assignment.id
                    )
            except Conflict:
                continue  # taken a moment ago: the next one
            return redirect(f"/console/review/{item.assignment.id}", notice=notice)
        return redirect("/console/review/", notice="queue_empty" if notice is None else notice)

    @post("/{assignment_id:uuid}/claim", status_code=303)
    def claim(
        self,
        request: Request[Any, Any, Any],
        assignment_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        viewer = viewer_of(request, db_session, *REVIEWERS)
        check_csrf(viewer, request, data)
        try:
            reviews.claim(db_session, settings, reviewer_id=viewer.user.id, assignment_id=assignment_id)
        except Conflict as exc:
            db_session.rollback()
            return redirect("/console/review/", notice=exc.code)
        return redirect(f"/console/review/{assignment_id}")

    @get("/{assignment_id:uuid}")
    def item(
        self,
        request: Request[Any, Any, Any],
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        viewer = viewer_of(request, db_session, *REVIEWERS)
        try:
            detail = item_detail(db_session, storage, settings, viewer.user.id, assignment_id)
        except DomainError as exc:
            if exc.code == "not_in_review":
                return redirect("/console/review/", notice="not_in_review")
            raise
        photo_checks: dict[uuid.UUID, list[CheckOut]] = {p.id: [] for p in detail.photos}
        visit_checks: list[CheckOut] = []
        for check in detail.checks:
            if check.photo_id in photo_checks:
                photo_checks[check.photo_id].append(check)
            else:
                visit_checks.append(check)
        return page(
            "review_item.html.j2",
            request,
            viewer,
            item=detail,
            photo_checks=photo_checks,
            visit_checks=visit_checks,
            reason_codes=[(code.value, REASON_TEXT[code].english) for code in ReasonCode],
            position_svg=_positions_svg(detail),
            retention_days=settings.original_retention_days,
        )

    @post("/{assignment_id:uuid}/decision", status_code=303)
    def decide(
        self,
        request: Request[Any, Any, Any],
        assignment_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        viewer = viewer_of(request, db_session, *REVIEWERS)
        check_csrf(viewer, request, data)
        decision = one(data, "decision")
        codes = [c for c in many(data, "reasons") if c in ReasonCode.__members__]
        try:
            with db_session.begin_nested():
                reviews.decide(
                    db_session,
                    reviewer_id=viewer.user.id,
                    assignment_id=assignment_id,
                    approve=decision == "approve",
                    reasons=[ReasonCode(c) for c in codes],
                    comment=one(data, "comment")[:2000],
                )
        except (Conflict, Unprocessable) as exc:
            if exc.code == "reason_required":
                return redirect(f"/console/review/{assignment_id}", notice="reason_required")
            return self._open_next(
                db_session, settings, viewer.user.id, exclude=str(assignment_id), notice=exc.code
            )
        notice = "approved" if decision == "approve" else "rejected"
        return self._open_next(
            db_session, settings, viewer.user.id, exclude=str(assignment_id), notice=notice
        )


def _positions_svg(item: ItemOut) -> dict[str, float | bool] | None:
    """Store (with its geofence) and phone (with its accuracy) on a small local plan, in metres."""
    if item.device_position is None:
        return None
    lat0, lon0 = item.store_position.lat, item.store_position.lon
    dx = (item.device_position.lon - lon0) * 111_320 * math.cos(math.radians(lat0))
    dy = (item.device_position.lat - lat0) * 110_540
    reach = max(abs(dx), abs(dy), item.geofence_m, item.device_accuracy_m or 0) * 1.3
    scale = 90 / reach
    return {
        "store_r": item.geofence_m * scale,
        "x": 100 + dx * scale,
        "y": 100 - dy * scale,
        "acc_r": (item.device_accuracy_m or 0) * scale,
        "far": math.hypot(dx, dy) > item.geofence_m,
    }


class OversightConsoleController(Controller):
    path = "/console/oversight"
    include_in_schema = False

    @get("/")
    def oversight(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Template:
        """What people decided about the automated checks (admins only)."""
        viewer = viewer_of(request, db_session, Role.admin)
        found = oversight_report(db_session, settings)
        ids = [uuid.UUID(r.reviewer_id) for r in found.reviewers]
        names = {
            str(user.id): user.display_name or user.email
            for user in db_session.exec(select(User).where(col(User.id).in_(ids))).all()
        }
        return page("oversight.html.j2", request, viewer, report=found, names=names)


class ClientConsoleController(Controller):
    path = "/console/campaigns"
    include_in_schema = False

    @get("/")
    def campaigns(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        organization_id = viewer.principal.require_organization()
        listed, next_cursor = campaigns.list_campaigns(
            db_session, organization_id, status=None, limit=50, cursor=request.query_params.get("cursor")
        )
        rows = [(c, summary_out(results.summary(db_session, c))) for c in listed]
        return page("campaigns.html.j2", request, viewer, rows=rows, next_cursor=next_cursor)

    @get("/{campaign_id:uuid}")
    def campaign(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        organization_id = viewer.principal.require_organization()
        campaign = campaigns.get_campaign(db_session, organization_id, campaign_id)
        status = request.query_params.get("status") or None
        statuses = results.parse_statuses([status] if status else None)
        rows, next_cursor = results.page(
            db_session,
            campaign,
            statuses=statuses,
            limit=RESULTS_PER_PAGE,
            cursor=request.query_params.get("cursor"),
        )
        made, _ = exports.list_exports(db_session, organization_id, campaign.id, limit=10, cursor=None)
        return page(
            "campaign.html.j2",
            request,
            viewer,
            campaign=campaign,
            pause_detail=render_stored(campaign.pause_details, None, DEFAULT_LANGUAGE),
            summary=summary_out(results.summary(db_session, campaign)),
            results=[result_out(r, storage, settings) for r in rows],
            next_cursor=next_cursor,
            status=status,
            statuses=[s.value for s in DELIVERED],
            exports=[export_out(e, storage, settings) for e in made],
            references=[
                reference_out(r, storage, settings)
                for r in references.list_references(db_session, organization_id, campaign.id)
            ],
            max_references=references.MAX_REFERENCES,
            formats=[("csv", "CSV table"), ("zip", "ZIP of photos"), ("report", "HTML report")],
        )

    @post("/{campaign_id:uuid}/exports", status_code=303)
    def start_export(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
    ) -> Redirect:
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        fmt = one(data, "format")
        if fmt not in ExportFormat.__members__:
            raise Unprocessable(
                text(_("unknown export format {format}"), format=repr(fmt)), code="invalid_format"
            )
        exports.request_export(
            db_session,
            organization_id=viewer.principal.require_organization(),
            user_id=viewer.user.id,
            campaign_id=campaign_id,
            format=ExportFormat(fmt),
        )
        return redirect(f"/console/campaigns/{campaign_id}", notice="export_started")

    @post("/{campaign_id:uuid}/pay", status_code=303)
    def change_pay(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        """The reward (in currency units, as typed) and the estimate, through the API's rules."""
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        target = f"/console/campaigns/{campaign_id}"
        try:
            change = CampaignPayUpdate(
                reward_cents=round(Decimal(one(data, "reward").replace(",", ".").strip()) * 100),
                estimated_minutes=int(one(data, "estimated_minutes").strip()),
            )
        except (ArithmeticError, ValueError):  # InvalidOperation and pydantic's errors are both
            return redirect(target, notice="invalid_pay")
        try:
            with db_session.begin_nested():
                campaigns.update_pay(
                    db_session, viewer.principal.require_organization(), campaign_id, change, settings
                )
        except (Conflict, Unprocessable) as exc:
            return redirect(target, notice=exc.code if exc.code in NOTICES else "invalid_pay")
        return redirect(target, notice="pay_changed")


class ExportStatusController(Controller):
    """What the progress bars poll: an export's status as JSON, for the signed-in client only."""

    path = "/console/exports"
    include_in_schema = False

    @get("/{export_id:uuid}")
    def status(
        self,
        request: Request[Any, Any, Any],
        export_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> Response[dict[str, Any]]:
        viewer = viewer_of(request, db_session, Role.client)
        export = exports.get_export(db_session, viewer.principal.require_organization(), export_id)
        return Response(
            export_out(export, storage, settings).model_dump(mode="json"), headers=SECURITY_HEADERS
        )


def console_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            SignInController,
            ReviewConsoleController,
            ClientConsoleController,
            OversightConsoleController,
            ExportStatusController,
            *clients.ROUTES,
            *webhook_pages.ROUTES,
            *admin_pages.ROUTES,
            create_static_files_router(
                path="/console/static", directories=[HERE / "static"], include_in_schema=False
            ),
        ],
        exception_handlers={LoginRequired: login_required_handler, DomainError: domain_error_handler},
    )
