from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from fieldcheck.organizations.schemas import OrganizationOut
from fieldcheck.web import not_blank_schema


def _clean_name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    display_name: str = Field(min_length=1, max_length=100, json_schema_extra=not_blank_schema())

    _name = field_validator("display_name")(_clean_name)


class RegisterAccepted(BaseModel):
    """The same answer whether or not the address already had an account."""

    email: str
    detail: str = Field(
        default=(
            "If no account used this e-mail address, yours is ready: sign in with it and your "
            "password (POST /api/v1/auth/token). If one already did, nothing was changed: sign in "
            "with that account's password."
        )
    )
    sign_in: str = "/api/v1/auth/token"


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: Role


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    role: Role
    organization_id: uuid.UUID | None = None
    display_name: str | None = Field(
        default=None, min_length=1, max_length=100, json_schema_extra=not_blank_schema()
    )

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str | None) -> str | None:
        return None if value is None else _clean_name(value)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    organization_id: uuid.UUID | None
    is_active: bool
    created_at: datetime


class MeOut(UserOut):
    organization: OrganizationOut | None = None


class AccountClosingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024, description="the account's current password")
