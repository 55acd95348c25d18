from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, current_principal, requires
from fieldcheck.db import utcnow
from fieldcheck.discovery import service
from fieldcheck.discovery.schemas import NearbyPage
from fieldcheck.ratelimit import Throttle, caller_address
from fieldcheck.settings import Settings
from fieldcheck.web import get


class TaskController(Controller):
    path = "/api/v1/tasks"
    tags = ["workers"]
    guards = [requires(Role.worker)]
    security = BEARER_SECURITY

    @get(
        "/nearby",
        summary="Open tasks near a position, nearest first",
        description="Distances are geodesic on WGS84. radius_m and limit are capped (see 422 answers).",
    )
    def nearby(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[Session],
        lat: Annotated[float, Parameter(ge=-90, le=90)],
        lon: Annotated[float, Parameter(ge=-180, le=180)],
        # Their maxima are the settings in force (written into the OpenAPI document by contract.py).
        radius_m: Annotated[float, Parameter(gt=0)] = 5000,
        limit: Annotated[int, Parameter(ge=1)] = 50,
    ) -> NearbyPage:
        # The hottest read of the platform takes one dependency, its session: Litestar resolves two
        # or more in a task group of their own (about 60 us a request). The caller is the guard's
        # (requires), the settings and the throttle the application's.
        principal = current_principal(request)
        runtime = request.app.state.runtime
        settings: Settings = runtime.settings
        throttle: Throttle = runtime.throttle
        throttle.check("nearby", account=principal.user_id, address=caller_address(request))
        query = service.NearbyQuery(lat=lat, lon=lon, radius_m=radius_m, limit=limit)
        service.validate_nearby(query, settings)
        items = service.nearby(
            db_session, query, worker_id=principal.user_id, now=utcnow(), search=settings.nearby_search
        )
        return NearbyPage(items=items)
