"""What every console page shares: who is signed in, CSRF checks, rendering, redirects, errors.

Console pages are HTML over the same services and permission rules as the API: a reviewer's
page calls the review service with the reviewer's id, a client's page the campaign service with
the organization's id, so what a page can show is exactly what the API would answer.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.console import sessions
from fieldcheck.console.sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Viewer
from fieldcheck.errors import DomainError, Forbidden
from fieldcheck.i18n import _, text

log = logging.getLogger("fieldcheck.console")

# Messages a redirect may ask the next page to show, by code: no text travels in URLs.
NOTICES = {
    "approved": ("ok", "Approved. Here is the next item."),
    "rejected": ("ok", "Rejected. Here is the next item."),
    "queue_empty": ("ok", "Nothing is waiting for you in the queue."),
    "lease_expired": (
        "warn",
        "Your lease on that item expired before you decided; it went back to the queue.",
    ),
    "claimed_by_another": ("warn", "Another reviewer took that item first."),
    "not_in_review": ("warn", "That item no longer waits for a review (someone decided it)."),
    "not_claimed": ("warn", "Claim the item before deciding it."),
    "reason_required": ("warn", "A rejection needs at least one reason."),
    "signed_out": ("ok", "You are signed out."),
    "export_started": ("ok", "The export is being built; the bar shows its progress."),
    "session_expired": ("warn", "Your session ended; sign in again."),
    "pay_changed": ("ok", "The pay is changed; escrow holds the difference for every slot still owed."),
    "pay_below_floor": ("warn", "Not changed: that pay is still below the platform's floor per hour."),
    "insufficient_funds": (
        "warn",
        "Not changed: the organization's balance cannot cover the raise in escrow.",
    ),
    "reward_cannot_decrease": ("warn", "Not changed: the reward of an activated campaign can only go up."),
    "campaign_closed": ("warn", "Not changed: the campaign is closed."),
    "invalid_pay": ("warn", "Not changed: give a reward above 0 and an estimate of 1 to 1440 minutes."),
    "store_added": ("ok", "The store is added."),
    "stores_imported": ("ok", "The file is imported."),
    "campaign_created": ("ok", "The campaign is created as a draft: check it, then activate it."),
    "deposit_done": ("ok", "The deposit is on your balance."),
    "deposit_in_progress": ("warn", "That deposit is still being processed; reload in a moment."),
    "campaign_activated": ("ok", "The campaign is active: its tasks are offered to workers."),
    "campaign_resumed": ("ok", "The campaign is active again."),
    "campaign_paused": ("ok", "The campaign is paused: no new reservations; work already reserved goes on."),
    "campaign_closed_now": (
        "ok",
        "The campaign is closed; what it can no longer spend is back on your balance.",
    ),
    "activation_short": ("warn", "Not activated: your balance cannot cover the escrow. Deposit first."),
    "activation_below_floor": ("warn", "Not activated: the pay is below the platform's floor per hour."),
    "invalid_campaign_transition": ("warn", "Not changed: the campaign is not in a state that allows it."),
    "reference_added": ("ok", "The reference photo is being read; reload to see it ready (or why not)."),
    "reference_deleted": ("ok", "The reference photo is removed: new photos are no longer compared with it."),
    "reference_none": ("warn", "Choose one or more photos first."),
    "reference_type": ("warn", "Not added: reference photos are JPEG, PNG or HEIC files."),
    "reference_too_large": ("warn", "Not added: the photo is larger than the platform accepts."),
    "reference_limit": ("warn", "Not added: a campaign takes at most 5 reference photos; remove one first."),
    "reference_refused": ("warn", "Not added: the photo was refused."),
    "webhook_created": (
        "ok",
        "The endpoint is added. Copy its signing secret now: it is shown only this once.",
    ),
    "secret_rotated": (
        "ok",
        "The secret is rotated: the old one no longer signs anything. Copy the new one now: "
        "it is shown only this once.",
    ),
    "endpoint_disabled": (
        "ok",
        "The endpoint is disabled: nothing more is sent to it. Its delivery log stays readable.",
    ),
    "webhook_disabled": ("warn", "Not done: this endpoint is disabled, nothing is sent to it any more."),
    "redelivery_started": (
        "ok",
        "Sent again: one more attempt is on its way; the status below tells its outcome.",
    ),
    "delivery_in_progress": (
        "warn",
        "Not sent again: this delivery is still being attempted; its next attempt is already scheduled.",
    ),
    "user_deactivated": (
        "ok",
        "The account is deactivated: its access tokens and console sessions stopped working.",
    ),
    "user_reactivated": (
        "ok",
        "The account is active again; it signs in anew (its old tokens stay revoked).",
    ),
    "own_account": ("warn", "You cannot deactivate or reactivate your own account."),
    "account_closed": ("warn", "That account was closed by its owner; it cannot be reactivated."),
    "organization_created": ("ok", "The organization is created and chosen below for a client account."),
    "rejection_reversed": ("ok", "The rejection is reversed: the work is approved and its reward paid."),
    "not_rejected": (
        "warn",
        "Not reversed: that work is no longer rejected (reversed or decided meanwhile).",
    ),
}


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def viewer_of(request: Request[Any, Any, Any], db_session: Session, *roles: Role) -> Viewer:
    """The signed-in person, if they have one of `roles`; else a redirect to sign in (or 403)."""
    viewer = sessions.load(db_session, request.cookies.get(SESSION_COOKIE))
    if viewer is None:
        raise LoginRequired(request.url.path)
    if roles and viewer.role not in roles:
        raise Forbidden(text(_("this page is not for your account")), code="wrong_role")
    return viewer


def check_csrf(viewer: Viewer, request: Request[Any, Any, Any], form: dict[str, Any] | None) -> None:
    given = request.headers.get(CSRF_HEADER) or (form or {}).get(CSRF_FIELD)
    if isinstance(given, list):
        given = given[0] if given else None
    if not sessions.csrf_matches(viewer.csrf_token, given):
        raise Forbidden(
            text(_("this form is stale or was not sent by the console; reload the page")), code="csrf_failed"
        )


def page(
    name: str,
    request: Request[Any, Any, Any],
    viewer: Viewer | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return Template(
        template_name=name,
        context={
            "viewer": viewer,
            "notice": notice,
            "csrf_field": CSRF_FIELD,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


def redirect(
    path: str, *, notice: str | None = None, cookies: list[Cookie] | None = None, **params: str
) -> Redirect:
    query = {**params, **({"notice": notice} if notice else {})}
    target = f"{path}?{urlencode(query)}" if query else path
    return Redirect(target, status_code=303, cookies=cookies or [], headers=SECURITY_HEADERS)


# The console loads only its own files: no other origin can run script or frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob: http: https:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def login_required_handler(request: Request[Any, Any, Any], exc: LoginRequired) -> Response[Any]:
    return Redirect(f"/console/login?next={quote(exc.next_path)}", status_code=303, headers=SECURITY_HEADERS)


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """A console page that says no answers with a page, not with problem JSON."""
    if request.headers.get("accept", "").startswith("application/json"):
        return Response(
            {"code": exc.code, "detail": exc.detail}, status_code=exc.status_code, headers=SECURITY_HEADERS
        )
    with request.app.state.runtime.db.transaction(read_only=True) as session:
        viewer = sessions.load(session, request.cookies.get(SESSION_COOKIE))
    return page("error.html.j2", request, viewer, status_code=exc.status_code, error=exc)
