from __future__ import annotations

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, requires
from fieldcheck.organizations import service
from fieldcheck.organizations.schemas import OrganizationCreate, OrganizationOut
from fieldcheck.web import post


class AdminOrganizationController(Controller):
    path = "/api/v1/admin/organizations"
    tags = ["admin"]
    guards = [requires(Role.admin)]
    security = BEARER_SECURITY

    @post("/", summary="Create a client organization")
    def create(
        self, data: JSONBody[OrganizationCreate], db_session: NamedDependency[Session]
    ) -> OrganizationOut:
        organization = service.create_organization(db_session, name=data.name)
        return OrganizationOut.model_validate(organization, from_attributes=True)
