from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter, SkipValidation
from sqlmodel import Session

from fieldcheck.auth import service
from fieldcheck.auth.models import Role, User
from fieldcheck.auth.schemas import (
    AccountClosingIn,
    MeOut,
    PasswordChangeIn,
    RegisterAccepted,
    RegisterIn,
    TokenIn,
    TokenOut,
    UserCreate,
    UserOut,
)
from fieldcheck.auth.security import (
    BEARER_SECURITY,
    AccountGate,
    Passwords,
    Principal,
    Tokens,
    check_password_policy,
    requires,
    signed_in,
)
from fieldcheck.errors import TooManyRequests
from fieldcheck.i18n import _, text
from fieldcheck.organizations import service as organizations
from fieldcheck.organizations.models import Organization
from fieldcheck.organizations.schemas import OrganizationCreate, OrganizationOut
from fieldcheck.ratelimit import RateLimits
from fieldcheck.settings import Settings
from fieldcheck.web import DEFAULT_PAGE_LIMIT, Page, PageCursor, PageLimit, delete, get, post


def user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def client_address(request: Request[Any, Any, Any]) -> str:
    """The caller's address (behind trusted proxies, the one they saw; see fieldcheck.proxies)."""
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/register",
        summary="Sign up as a worker",
        status_code=202,
        description="The answer is the same whether or not the e-mail address already has an "
        "account (nothing is changed then); sign in next. Sign-ups per address are limited.",
    )
    def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterIn],
        db_session: NamedDependency[Session],
        passwords: NamedDependency[Passwords],
        settings: NamedDependency[Settings],
        rate_limits: NamedDependency[RateLimits],
    ) -> RegisterAccepted:
        email = service.normalize_email(str(data.email))
        check_password_policy(data.password, email=email)  # cheap, and says nothing about the address
        wait = rate_limits.hit(
            "sign_up", client_address(request), limit=settings.signup_max_per_address_per_hour, window_s=3600
        )
        if wait is not None:
            raise TooManyRequests(
                text(_("too many sign-ups from this address; try again in {wait} seconds"), wait=wait),
                code="sign_up_throttled",
                retry_after_s=wait,
            )
        service.register_worker(
            db_session, passwords, email=email, password=data.password, display_name=data.display_name
        )
        return RegisterAccepted(email=email)

    @post("/token", summary="Exchange e-mail and password for an access token", status_code=200)
    def token(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TokenIn],
        db_session: NamedDependency[Session],
        passwords: NamedDependency[Passwords],
        tokens: NamedDependency[Tokens],
        settings: NamedDependency[Settings],
    ) -> TokenOut:
        try:
            user = service.authenticate(
                db_session,
                passwords,
                settings,
                email=data.email,
                password=data.password,
                address=client_address(request),
            )
        except service.InvalidCredentials:
            # The edge owns the transaction: keep the recorded failure, then answer 401.
            db_session.commit()
            raise
        return TokenOut(
            access_token=service.issue_token(tokens, user), expires_in=tokens.ttl_s, role=Role(user.role)
        )

    @post(
        "/logout",
        summary="Sign out: this access token stops working",
        status_code=204,
        guards=[signed_in],
        security=BEARER_SECURITY,
    )
    def logout(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        account_gate: NamedDependency[AccountGate],
    ) -> None:
        service.revoke_token(db_session, principal)
        db_session.commit()
        account_gate.forget(principal.user_id)


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["auth"]
    guards = [signed_in]
    security = BEARER_SECURITY

    @get("/", summary="The signed-in account")
    def me(self, db_session: NamedDependency[Session], principal: NamedDependency[Principal]) -> MeOut:
        user = service.get_user(db_session, principal)
        organization = db_session.get(Organization, user.organization_id) if user.organization_id else None
        return MeOut(
            **user_out(user).model_dump(),
            organization=OrganizationOut.model_validate(organization, from_attributes=True)
            if organization
            else None,
        )

    @post(
        "/password",
        summary="Change the password: every token and console sign-in of the account stops working",
        status_code=204,
    )
    def change_password(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PasswordChangeIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        passwords: NamedDependency[Passwords],
        settings: NamedDependency[Settings],
        account_gate: NamedDependency[AccountGate],
    ) -> None:
        try:
            service.change_password(
                db_session,
                passwords,
                settings,
                user_id=principal.user_id,
                current_password=data.current_password,
                new_password=data.new_password,
                address=client_address(request),
            )
        except service.WrongPassword:
            db_session.commit()  # the failure counts towards the sign-in throttle
            raise
        db_session.commit()
        account_gate.forget(principal.user_id)

    @delete(
        "/",
        summary="Close my account (workers): signed out for good, name, e-mail and bank details erased",
        description="With the password (422 wrong_password; attempts count like sign-ins). Reservations "
        "held are given back; delivered work is still decided and paid; the available balance is paid "
        "out to the bank account on file when it reaches the minimum, anything earned later stays on "
        "the ledger under the account's id, whose rows are untouched. Every token stops working at once.",
        status_code=204,
        guards=[requires(Role.worker)],
    )
    def close(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[AccountClosingIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        passwords: NamedDependency[Passwords],
        settings: NamedDependency[Settings],
        account_gate: NamedDependency[AccountGate],
        account_closer: NamedDependency[SkipValidation[service.AccountCloser]],
    ) -> None:
        try:
            account_closer(
                db_session,
                passwords,
                settings,
                user_id=principal.user_id,
                password=data.password,
                address=client_address(request),
            )
        except service.WrongPassword:
            db_session.commit()  # the failure counts towards the sign-in throttle
            raise
        db_session.commit()
        account_gate.forget(principal.user_id)


class AdminUserController(Controller):
    path = "/api/v1/admin/users"
    tags = ["admin"]
    guards = [requires(Role.admin)]
    security = BEARER_SECURITY

    @post("/", summary="Create an account of any role")
    def create(
        self,
        data: JSONBody[UserCreate],
        db_session: NamedDependency[Session],
        passwords: NamedDependency[Passwords],
    ) -> UserOut:
        user = service.create_user(
            db_session,
            passwords,
            email=str(data.email),
            password=data.password,
            role=data.role,
            display_name=data.display_name,
            organization_id=data.organization_id,
        )
        return user_out(user)

    @get("/", summary="Accounts, newest last; by role, part of the e-mail address, active or not")
    def list_users(
        self,
        db_session: NamedDependency[Session],
        role: FromQuery[Role | None] = None,
        email: Annotated[str | None, QueryParameter(max_length=320)] = None,
        active: FromQuery[bool | None] = None,
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[UserOut]:
        users, next_cursor = service.list_users(
            db_session, role=role, email=email, active=active, limit=limit, cursor=cursor
        )
        return Page(items=[user_out(u) for u in users], next_cursor=next_cursor)

    @post(
        "/{user_id:uuid}/deactivate",
        summary="Deactivate an account: its tokens and console sign-ins stop working at once",
        status_code=200,
    )
    def deactivate(
        self,
        user_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        account_gate: NamedDependency[AccountGate],
    ) -> UserOut:
        return _set_active(db_session, principal, account_gate, user_id, active=False)

    @post(
        "/{user_id:uuid}/reactivate",
        summary="Reactivate an account (it signs in again: old tokens stay revoked)",
        status_code=200,
    )
    def reactivate(
        self,
        user_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        account_gate: NamedDependency[AccountGate],
    ) -> UserOut:
        return _set_active(db_session, principal, account_gate, user_id, active=True)


class AdminOrganizationController(Controller):
    """Admins open client organizations (then give them client accounts, above)."""

    path = "/api/v1/admin/organizations"
    tags = ["admin"]
    guards = [requires(Role.admin)]
    security = BEARER_SECURITY

    @post("/", summary="Create a client organization")
    def create(
        self, data: JSONBody[OrganizationCreate], db_session: NamedDependency[Session]
    ) -> OrganizationOut:
        organization = organizations.create_organization(db_session, name=data.name)
        return OrganizationOut.model_validate(organization, from_attributes=True)


def _set_active(
    session: Session, principal: Principal, gate: AccountGate, user_id: uuid.UUID, *, active: bool
) -> UserOut:
    """Commit the change, then make this process's cache forget the account (others within seconds)."""
    out = user_out(service.set_active(session, actor=principal, user_id=user_id, active=active))
    session.commit()
    gate.forget(user_id)
    return out
