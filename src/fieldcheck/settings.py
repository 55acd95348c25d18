"""Configuration: every knob is an environment variable with the FIELDCHECK_ prefix.

The embedded default needs none of them: one data folder (FIELDCHECK_HOME, default ./var) holds
the SQLite file, the stored objects and the generated secret.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_FILE_NAME = "secret.key"
# ISO 20022 versions of the SEPA credit-transfer files payouts are written in.
PainVersion = Literal["pain.001.001.09", "pain.001.001.03"]
# A BIC (ISO 9362) as both versions' schemas accept it: 8 or 11 characters.
BIC_PATTERN = r"^[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?$"
# HS256 keys shorter than its 256-bit output weaken it (RFC 7518, 3.2).
MIN_SECRET_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDCHECK_", extra="ignore", frozen=False)

    home: Path = Field(default=Path("var"), description="Data folder of the embedded default.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data folder."
    )
    broker_url: str = Field(
        default="embedded", description="amqp://... (RabbitMQ), redis://... or embedded (in-process)."
    )
    queue_prefix: str = Field(default="fieldcheck", description="Prefix of every job queue name.")
    inprocess_worker: bool | None = Field(
        default=None,
        description="Run job worker threads inside `serve`; default: only with the embedded broker.",
    )
    worker_threads: int = Field(default=4, ge=1, le=64)
    # How long an idle worker thread waits on its queue before looking again: also how long
    # stopping a worker takes. Lower costs a little CPU while idle.
    worker_poll_ms: int = Field(default=200, ge=1, le=10_000)
    # Images a process holds decoded at once (each at most 64 MiB of pixels): bounds the memory
    # of photo checks whatever arrives at once.
    max_concurrent_decodes: int = Field(default=2, ge=1, le=64)
    relay_interval_s: float = Field(
        default=2.0, gt=0, description="How often unsent outbox rows are retried."
    )
    scheduler_tick_s: float = Field(default=5.0, gt=0)
    run_scheduler: bool = Field(
        default=True,
        description="`serve` also runs the scheduler loop (safe with many processes: periods are claimed).",
    )
    auto_migrate: bool = Field(default=True, description="`serve` upgrades the database on start.")

    # Object storage: local folder unless an S3 bucket is configured.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint the server uses (SeaweedFS, R2...)."
    )
    s3_public_endpoint_url: str | None = Field(
        default=None, description="Endpoint phones and clients reach, when it differs (signed URLs)."
    )
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_create_bucket: bool = Field(default=False, description="Create the bucket on start if missing.")

    token_secret: SecretStr | None = Field(
        default=None, description="Signs tokens and local URLs; default: generated in the data folder."
    )
    token_ttl_s: int = Field(default=3600, ge=60, le=7 * 86400)
    public_base_url: str | None = Field(
        default=None, description="Base of URLs the server hands out; default: its listen address."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API from other sites (JSON list); none by default.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    tls_cert: Path | None = Field(
        default=None,
        description="`serve` speaks HTTPS with this certificate (PEM, chain after it); with FIELDCHECK_TLS_KEY. "
        "Phones need HTTPS for location and the camera.",
    )
    tls_key: Path | None = Field(
        default=None, description="The private key (PEM, unencrypted) of FIELDCHECK_TLS_CERT."
    )
    signed_url_ttl_s: int = Field(default=900, ge=30, le=7 * 86400)

    # Passwords, sign-in throttling and sign-up limits.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    argon2_parallelism: int = Field(default=4, ge=1)
    login_free_failures: int = Field(
        default=5,
        ge=1,
        description="Wrong passwords for one account from one address before tries from there wait.",
    )
    login_free_failures_per_address: int = Field(
        default=50, ge=1, description="Wrong passwords from one address, any account, before its tries wait."
    )
    login_account_alert_failures: int = Field(
        default=50,
        ge=1,
        description="Failures of one account, all addresses, that mark it as attacked: then every "
        "address that failed on it waits after its first failure (addresses that did not never wait).",
    )
    login_delay_base_s: int = Field(
        default=2, ge=1, le=3600, description="The first wait; it doubles with each further failure."
    )
    login_delay_max_s: int = Field(default=900, ge=1, le=86400, description="The longest wait.")
    login_failure_window_s: int = Field(default=3600, ge=60, description="How long a failed sign-in counts.")
    rate_limit_redis_url: str | None = Field(
        default=None,
        description="Redis (redis://...) where every API process counts the request limits below; none: "
        "each process counts its own.",
    )
    rate_limit_nearby_per_minute: int = Field(
        default=60, ge=0, description="Nearby searches per account (0: none)."
    )
    rate_limit_reservations_per_minute: int = Field(default=20, ge=0, description="Reservations per account.")
    rate_limit_photo_slots_per_minute: int = Field(
        default=60, ge=0, description="Photo upload slots per account."
    )
    rate_limit_submissions_per_minute: int = Field(
        default=20,
        ge=0,
        description="Submissions per account (a retry with the same Idempotency-Key is free).",
    )
    rate_limit_exports_per_hour: int = Field(default=20, ge=0, description="Exports asked for per account.")
    rate_limit_address_factor: int = Field(
        default=20,
        ge=0,
        description="One client address may make this many times an account's limit (phones share "
        "addresses behind carriers' NAT); 0: no per-address limit.",
    )
    signup_max_per_address_per_hour: int = Field(
        default=10, ge=1, description="Sign-ups one address may try per hour."
    )
    account_check_cache_s: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long a process trusts that a token's account is active and the token not "
        "revoked before asking the database again (0: every request).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Proxies (CIDR, comma-separated) whose X-Forwarded-For and X-Forwarded-Proto "
        "are believed; the client is the right-most address that is not one of them.",
    )

    # Campaigns, discovery and reservations.
    pay_floor_cents_per_hour: dict[str, int] = Field(
        default_factory=lambda: {"EUR": 1202},
        description="Lowest pay per hour of estimated work, per accepted currency (JSON object).",
    )
    pay_floor_min_visits: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Visits after which a campaign's pay is also judged on its measured working time: "
        "when its reward per median real hour is below the floor it stops taking reservations.",
    )
    max_reservations_per_worker: int = Field(default=3, ge=1, le=100)
    new_worker_max_reservations: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Reservations a worker may hold at once until a first visit of theirs is approved.",
    )
    nearby_max_radius_m: int = Field(default=50_000, ge=100, le=100_000)
    nearby_max_limit: int = Field(default=100, ge=1, le=1000)
    nearby_search: Literal["auto", "portable"] = Field(
        default="auto",
        description="Discovery's spatial search: `auto` (PostGIS's GiST index and KNN ordering when the "
        "database has them, the band index read nearest first on SQLite) or `portable` (the band index "
        "over the whole search box, on any database).",
    )
    store_import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    store_import_max_rows: int = Field(default=200_000, ge=1)
    campaign_max_stores: int = Field(default=100_000, ge=1)

    # Money.
    platform_fee_bps: int = Field(
        default=1000, ge=0, le=5000, description="Fee per slot, in basis points of the reward."
    )
    payout_minimum_cents: int = Field(default=1000, ge=1, description="Smallest payout a worker may ask for.")
    max_deposit_cents: int = Field(default=10_000_000, ge=1)
    payout_pain_version: PainVersion = Field(
        default="pain.001.001.09",
        description="ISO 20022 version of the SEPA credit-transfer files payouts are written in "
        "(pain.001.001.03 for banks that still ask for it).",
    )
    payout_debtor_name: str | None = Field(
        default=None,
        min_length=1,
        description="Holder of the platform's account payouts are paid from, as the bank knows it; "
        "unset: a demo debtor no bank accepts (set the name and the IBAN in production).",
    )
    payout_debtor_iban: str | None = Field(
        default=None, description="IBAN of the platform's account payouts are paid from."
    )
    payout_debtor_bic: str | None = Field(
        default=None,
        pattern=BIC_PATTERN,
        description="BIC of the platform's bank; unset: NOTPROVIDED (SEPA banks find it from the IBAN).",
    )
    # Review.
    review_lease_minutes: int = Field(default=15, ge=1, le=240)
    appeal_window_days: int = Field(default=14, ge=1, le=365)
    original_retention_days: int = Field(
        default=180,
        ge=1,
        le=3650,
        description="Days the original photos and the phone's position are kept once the decision is final "
        "(approved and past any audit, or rejected and past the appeal); then a job deletes them. The "
        "client-safe copies and the distance stay for the client's audit.",
    )
    oversight_overturn_rate: float = Field(
        default=0.30,
        ge=0,
        le=1,
        description="A check whose decisions people overturn more often than this is marked as needing recalibration.",
    )
    oversight_min_cases: int = Field(
        default=20, ge=1, description="Human decisions on a check before its overturn rate is judged."
    )
    appeal_response_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="An appeal is answered within this many days, or decided in the worker's favour (approved "
        "and paid).",
    )

    # Webhooks.
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks go to private, loopback, link-local and other non-public addresses.",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Time limit of each step of an attempt."
    )
    webhook_max_attempts: int = Field(default=8, ge=1, le=50, description="Attempts before a delivery fails.")
    webhook_backoff_base_s: float = Field(
        default=30.0, gt=0, description="Wait after the first failed attempt."
    )
    webhook_backoff_max_s: float = Field(default=21600.0, gt=0, description="Longest wait between attempts.")

    # Photos.
    photo_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, description="Largest photo accepted.")
    photo_types: list[str] = Field(
        default_factory=lambda: ["image/jpeg", "image/png", "image/heic", "image/heif"],
        description="Content types phones may upload.",
    )

    # Exports.
    export_retention_hours: int = Field(
        default=168, ge=1, le=24 * 365, description="How long an export's file is kept before it is deleted."
    )
    export_link_ttl_s: int = Field(
        default=7 * 86400,
        ge=60,
        le=7 * 86400,
        description="Validity of the photo links written into a CSV export (S3 allows at most 7 days).",
    )

    # Browser console.
    console_session_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="How long a console sign-in lasts."
    )
    console_secure_cookies: bool | None = Field(
        default=None,
        description="Mark console cookies Secure (HTTPS only); default: when the public base URL is https.",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_token: SecretStr | None = Field(
        default=None,
        description="/metrics (and --metrics-port) answer callers on loopback, and others that send "
        "Authorization: Bearer <this token>.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text lines, or one JSON object per line (time, level, logger, message, request_id; "
        "route, method, status, duration_ms and role for requests; job_id and actor in jobs).",
    )

    @field_validator("token_secret")
    @classmethod
    def _long_enough_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"FIELDCHECK_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes "
                "(for example: openssl rand -base64 48); leave it unset to have one generated"
            )
        return value

    @field_validator("payout_debtor_iban", "payout_debtor_bic", mode="before")
    @classmethod
    def _compact_bank_code(cls, value: object) -> object:
        return value.replace(" ", "").upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _whole_debtor(self) -> Settings:
        named, numbered = self.payout_debtor_name is not None, self.payout_debtor_iban is not None
        if named != numbered or (self.payout_debtor_bic is not None and not numbered):
            raise ValueError(
                "set FIELDCHECK_PAYOUT_DEBTOR_NAME and FIELDCHECK_PAYOUT_DEBTOR_IBAN together "
                "(and FIELDCHECK_PAYOUT_DEBTOR_BIC only with them), or none of them for the demo debtor"
            )
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or a CIDR network") from None
        return value

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies)

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def tls_enabled(self) -> bool:
        """`serve` speaks HTTPS (both the certificate and its key are configured)."""
        return self.tls_cert is not None and self.tls_key is not None

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'fieldcheck.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def broker_kind(self) -> Literal["embedded", "rabbitmq", "redis"]:
        url = self.broker_url
        if url == "embedded":
            return "embedded"
        if url.startswith(("amqp://", "amqps://")):
            return "rabbitmq"
        if url.startswith(("redis://", "rediss://", "unix://")):
            return "redis"
        raise ValueError(f"FIELDCHECK_BROKER_URL must be embedded, amqp://... or redis://..., not {url!r}")

    @property
    def runs_inprocess_worker(self) -> bool:
        if self.inprocess_worker is None:
            return self.broker_kind == "embedded"
        return self.inprocess_worker

    @property
    def storage_kind(self) -> Literal["local", "s3"]:
        return "s3" if self.s3_bucket else "local"

    @property
    def objects_dir(self) -> Path:
        return self.home / "objects"

    @property
    def base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"{'https' if self.tls_enabled else 'http'}://{host}:{self.port}"

    @cached_property
    def secret(self) -> bytes:
        """The token secret: configured, or generated once and kept in the data folder."""
        if self.token_secret is not None:
            return self.token_secret.get_secret_value().encode()
        return _load_or_create_secret(self.home / SECRET_FILE_NAME)


def _load_or_create_secret(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when the CLI and a server start together, exactly one of them writes the secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            value = path.read_bytes().strip()
            if value:
                return value
            time.sleep(0.02)
        raise RuntimeError(f"{path} exists but is empty") from None
    value = secrets.token_urlsafe(48).encode()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value + b"\n")
    return value
