from __future__ import annotations

from typing import Any

from litestar import Controller, Request
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlmodel import Session

from fieldcheck.auth import service
from fieldcheck.auth.models import Role, User
from fieldcheck.auth.schemas import MeOut, RegisterIn, TokenIn, TokenOut, UserCreate, UserOut
from fieldcheck.auth.security import BEARER_SECURITY, Passwords, Principal, Tokens, requires, signed_in
from fieldcheck.organizations import service as organizations
from fieldcheck.organizations.models import Organization
from fieldcheck.organizations.schemas import OrganizationCreate, OrganizationOut
from fieldcheck.settings import Settings
from fieldcheck.web import get, post


def user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/register", summary="Sign up as a worker")
    def register(
        self,
        data: JSONBody[RegisterIn],
        db_session: NamedDependency[Session],
        passwords: NamedDependency[Passwords],
    ) -> UserOut:
        user = service.create_user(
            db_session,
            passwords,
            email=str(data.email),
            password=data.password,
            role=Role.worker,
            display_name=data.display_name,
        )
        return user_out(user)

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
        address = request.client.host if request.client else "unknown"
        try:
            user = service.authenticate(
                db_session, passwords, settings, email=data.email, password=data.password, address=address
            )
        except service.InvalidCredentials:
            # The edge owns the transaction: keep the recorded failure, then answer 401.
            db_session.commit()
            raise
        return TokenOut(
            access_token=service.issue_token(tokens, user), expires_in=tokens.ttl_s, role=Role(user.role)
        )


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
