"""The `fieldcheck` command: serve, worker, scheduler, db, users and the operator tools.

Each command imports what it runs inside its own body, so `fieldcheck --help` and a quick command
do not pay for loading the whole application (OpenCV, SQLAlchemy, Litestar).
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from fieldcheck.settings import Settings


def _settings(**overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)


def _say(message: str) -> None:
    """What a long-running command tells its operator, through the log (text or JSON lines)."""
    logging.getLogger("fieldcheck.cli").info(message)


def _metrics_on(runtime: Any, port: int | None) -> None:
    if port is None:
        return
    from fieldcheck.observability import serve_metrics

    serve_metrics(runtime.db, runtime.settings, port)
    _say(f"metrics on port {port} (/metrics)")


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        _say(f"received signal {signum}; stopping")
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    while not stop.wait(1):
        pass


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fieldcheck")
def main() -> None:
    """fieldcheck: the backend of field micro-task work.

    Configuration comes from FIELDCHECK_* environment variables; with none set, everything runs
    embedded under ./var (SQLite, local object storage, in-process jobs).
    """


def _check_tls(settings: Settings) -> None:
    """Both files or neither, each readable, and a certificate with its key: said plainly, before
    anything starts (uvicorn would stop with a traceback)."""
    import ssl

    if (settings.tls_cert is None) != (settings.tls_key is None):
        given, missing = (
            ("--tls-cert", "--tls-key") if settings.tls_key is None else ("--tls-key", "--tls-cert")
        )
        raise click.UsageError(
            f"{given} needs {missing} too: HTTPS takes the certificate and its private key "
            "(FIELDCHECK_TLS_CERT and FIELDCHECK_TLS_KEY); give both, or neither for plain HTTP"
        )
    if settings.tls_cert is None or settings.tls_key is None:
        return
    for option, path in (("--tls-cert", settings.tls_cert), ("--tls-key", settings.tls_key)):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {path}: {exc.strerror or exc}", param_hint=f"'{option}'"
            ) from None
    encrypted = False

    def no_password() -> bytes:
        nonlocal encrypted
        encrypted = True
        return b""

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert, settings.tls_key, password=no_password
        )
    except ssl.SSLError as exc:
        reason = (
            "the key is protected by a passphrase; give an unencrypted key "
            "(openssl pkey -in KEY -out KEY-plain.pem)"
            if encrypted
            else f"they are not a PEM certificate and its private key ({exc.reason or exc})"
        )
        raise click.UsageError(f"cannot use {settings.tls_cert} with {settings.tls_key}: {reason}") from None


_tls_cert_option = click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Serve HTTPS with this certificate (PEM; default FIELDCHECK_TLS_CERT). With --tls-key.",
)
_tls_key_option = click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The certificate's private key (PEM, unencrypted; default FIELDCHECK_TLS_KEY).",
)


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
@click.option("--no-migrate", is_flag=True, help="Do not upgrade the database schema on start.")
@_tls_cert_option
@_tls_key_option
def serve(
    host: str | None, port: int | None, no_migrate: bool, tls_cert: Path | None, tls_key: Path | None
) -> None:
    """Run the HTTP API (and, embedded, the job worker and scheduler).

    With --tls-cert and --tls-key it speaks HTTPS: phones need it for their location and camera
    (the worker app at /app/).
    """
    settings = _settings(host=host, port=port, tls_cert=tls_cert, tls_key=tls_key)
    _check_tls(settings)  # before loading the application: a refusal comes at once

    import uvicorn

    from fieldcheck import migrations
    from fieldcheck.app import create_app
    from fieldcheck.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if settings.auto_migrate and not no_migrate:
        migrations.upgrade(settings)
    _say(
        f"fieldcheck on {settings.base_url} (database: {'SQLite' if settings.is_sqlite else 'PostgreSQL'}, "
        f"broker: {settings.broker_kind}, storage: {settings.storage_kind}, data: {settings.home})"
    )
    if settings.host in ("0.0.0.0", "::") and not settings.public_base_url:  # noqa: S104
        _say(
            f"note: the URLs handed out (photo uploads) start with {settings.base_url}, which other "
            "devices cannot reach: set FIELDCHECK_PUBLIC_BASE_URL to the address they use "
            "(or --host that address)"
        )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # X-Forwarded-For is read by the app itself, through FIELDCHECK_TRUSTED_PROXIES only.
        proxy_headers=False,
        log_level=settings.log_level.lower(),
        # fieldcheck's own access log (fieldcheck.access: route templates, never a query string with a
        # position in it) replaces uvicorn's; uvicorn's other records go through fieldcheck's handler.
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=30,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )


METRICS_PORT = click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve Prometheus metrics on this port (all addresses; loopback or FIELDCHECK_METRICS_TOKEN).",
)


@main.command()
@click.option("--threads", type=int, default=None, help="Worker threads (default FIELDCHECK_WORKER_THREADS).")
@click.option("--queues", default=None, help="Comma-separated queues to consume (default: all).")
@METRICS_PORT
def worker(threads: int | None, queues: str | None, metrics_port: int | None) -> None:
    """Run a job worker process against the configured broker."""
    from fieldcheck import tracing
    from fieldcheck.logs import configure_logging
    from fieldcheck.runtime import Runtime

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    tracing.configure("fieldcheck-worker")
    if settings.broker_kind == "embedded":
        raise click.UsageError(
            "the embedded broker lives inside `fieldcheck serve`; set FIELDCHECK_BROKER_URL "
            "(amqp://... or redis://...) to run separate workers"
        )
    runtime = Runtime(settings)
    runtime.bound_photo_decodes()
    runtime.jobs.start_worker(threads=threads, queues=queues.split(",") if queues else None)
    _metrics_on(runtime, metrics_port)
    _say(f"worker consuming {sorted(runtime.jobs.declared_queues())}")
    try:
        _wait_for_signal()
    finally:
        runtime.close()
        tracing.shutdown()


@main.command()
@METRICS_PORT
def scheduler(metrics_port: int | None) -> None:
    """Run periodic jobs (once per period, however many schedulers run) and the outbox relay."""
    from fieldcheck import tracing
    from fieldcheck.logs import configure_logging
    from fieldcheck.runtime import Runtime

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    tracing.configure("fieldcheck-scheduler")
    runtime = Runtime(settings)
    runtime.start(worker=False, relay=True, scheduler=True)
    _metrics_on(runtime, metrics_port)
    _say("scheduler running")
    try:
        _wait_for_signal()
    finally:
        runtime.close()
        tracing.shutdown()


@main.group()
def storage() -> None:
    """Object storage."""


@storage.command("init")
def storage_init() -> None:
    """Create the S3 bucket when missing and let the worker app's pages upload to it (the
    bucket's CORS rule); safe to run again, and from several places at once."""
    from fieldcheck.storage import S3Storage, browser_origins

    settings = _settings()
    if settings.storage_kind != "s3":
        click.echo("local storage: nothing to create (the folder is made on first use)")
        return
    store = S3Storage(settings.model_copy(update={"s3_create_bucket": False}))
    created = store.ensure_bucket()
    origins = browser_origins(settings)
    store.allow_browser_uploads(origins)
    state = "created" if created else "already there"
    click.echo(f"bucket {settings.s3_bucket}: {state}; browser uploads allowed from {', '.join(origins)}")


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    from fieldcheck import migrations

    settings = _settings()
    migrations.upgrade(settings, revision)
    click.echo(f"database at {migrations.head_revision(settings) if revision == 'head' else revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Downgrade the schema to REVISION."""
    from fieldcheck import migrations

    migrations.downgrade(_settings(), revision)


@db.command("enable-postgis")
def db_enable_postgis() -> None:
    """Set up PostGIS for discovery (extension, generated column, GiST index): idempotent."""
    from fieldcheck.db import Database
    from fieldcheck.discovery import spatial

    settings = _settings()
    database = Database(settings)
    try:
        if database.engine.dialect.name != "postgresql":
            raise click.ClickException("PostGIS is for PostgreSQL; SQLite's discovery needs nothing more")
        with database.engine.begin() as connection:
            why_not = spatial.enable_postgis(connection)
        if why_not is not None:
            raise click.ClickException(f"PostGIS could not be set up ({why_not}): {spatial.WHAT_TO_DO}")
        with database.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE tasks")
    finally:
        database.dispose()
    click.echo("PostGIS is set up: discovery uses its GiST index (restart the API processes)")


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Write a new migration from the difference between models and the database."""
    from fieldcheck import migrations

    migrations.revision(_settings(), message)


@main.group()
def checks() -> None:
    """The automated checks' stored data."""


@checks.command("rehash")
def checks_rehash() -> None:
    """Bring the duplicate index's stored hashes to the current version (run once after upgrading
    past the version that takes hashes upright; safe to run again, and while serving)."""
    from fieldcheck.checks.service import rehash_turned
    from fieldcheck.runtime import Runtime

    runtime = Runtime(_settings())
    try:
        with runtime.db.session() as session:
            seen, changed = rehash_turned(session, runtime.storage)
    finally:
        runtime.close()
    click.echo(f"{seen} stored hashes looked at, {changed} replaced (photos stored turned)")


@checks.command("refeature")
def checks_refeature() -> None:
    """Recompute the reference match's stored features of an older kind (run once after upgrading
    past a version that changed them; until then such references are not compared with). Safe to
    run again, and while serving."""
    from fieldcheck.checks.service import refeature
    from fieldcheck.runtime import Runtime

    runtime = Runtime(_settings())
    try:
        with runtime.db.session() as session:
            seen, changed = refeature(session, runtime.storage)
    finally:
        runtime.close()
    click.echo(f"{seen} stored features looked at, {changed} recomputed")


@main.group()
def users() -> None:
    """Accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 10 characters.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["worker", "client", "reviewer", "admin"], case_sensitive=False),
)
@click.option("--organization", default=None, help="Organization id or name (created if new); clients only.")
@click.option("--display-name", default=None)
def users_create(
    email: str, password: str, role: str, organization: str | None, display_name: str | None
) -> None:
    """Create an account (the first admin, or any other)."""
    from sqlmodel import select

    import fieldcheck.models  # noqa: F401  (every table: foreign keys resolve)
    from fieldcheck.auth.models import Role
    from fieldcheck.auth.security import Passwords
    from fieldcheck.auth.service import create_user
    from fieldcheck.db import Database
    from fieldcheck.errors import DomainError
    from fieldcheck.organizations.models import Organization

    settings = _settings()
    db = Database(settings)
    try:
        with db.transaction() as session:
            organization_id: uuid.UUID | None = None
            if organization:
                found: Organization | None
                try:
                    found = session.get(Organization, uuid.UUID(organization))
                except ValueError:
                    found = session.exec(
                        select(Organization).where(Organization.name == organization)
                    ).first()
                    if found is None:
                        found = Organization(name=organization)
                        session.add(found)
                        session.flush()
                if found is None:
                    raise click.BadParameter("no organization has this id", param_hint="--organization")
                organization_id = found.id
            user = create_user(
                session,
                Passwords(settings),
                email=email,
                password=password,
                role=Role(role.lower()),
                display_name=display_name,
                organization_id=organization_id,
            )
            click.echo(
                json.dumps(
                    {
                        "id": str(user.id),
                        "email": user.email,
                        "role": user.role,
                        "organization_id": str(organization_id) if organization_id else None,
                    }
                )
            )
    except DomainError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        sys.exit(2)
    finally:
        db.dispose()


@main.group()
def oversight() -> None:
    """Human oversight of the automated checks."""


@oversight.command("report")
@click.option(
    "--since", type=click.DateTime(), default=None, help="Only decisions from this date (YYYY-MM-DD)."
)
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write one row per human decision on an automated flag (the labels to recalibrate with).",
)
def oversight_report(since: datetime | None, as_json: bool, csv_path: Path | None) -> None:
    """Per check: how often it fired and how often a person overturned it; appeals; reviewers."""
    import csv
    from dataclasses import asdict

    import fieldcheck.models  # noqa: F401  (every table: foreign keys resolve)
    from fieldcheck.db import Database
    from fieldcheck.reviews import oversight as figures

    settings = _settings()
    db = Database(settings)
    moment = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    try:
        with db.transaction(read_only=True) as session:
            found = figures.report(session, settings, since=moment)
    finally:
        db.dispose()
    if csv_path is not None:
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(figures.LabelRow.__dataclass_fields__))
            writer.writeheader()
            writer.writerows(asdict(row) for row in found.labels)
    if as_json:
        click.echo(json.dumps(found.as_dict()))
        return
    click.echo(f"{'check':26} {'outcome':7} {'fired':>7} {'by people':>9} {'overturned':>10} {'rate':>6}")
    for check in found.checks:
        rate = "" if check.overturn_rate is None else f"{check.overturn_rate:.0%}"
        flag = "  needs recalibration" if check.needs_recalibration else ""
        click.echo(
            f"{check.name:26} {check.outcome:7} {check.fired:7} {check.human_decided:9} {check.overturned:10} "
            f"{rate:>6}{flag}"
        )
    for decider, numbers in found.appeals.items():
        rate = "" if numbers["reversal_rate"] is None else f", {numbers['reversal_rate']:.0%} reversed"
        click.echo(f"appeals against {decider} decisions: {numbers['decided']} decided{rate}")
    hours = found.hours_to_human_decision
    click.echo(f"hours to a human decision: p50 {hours['p50']}, p90 {hours['p90']}")
    for person in found.reviewers:
        share = "" if person.reversed_share is None else f", {person.reversed_share:.0%} reversed on appeal"
        click.echo(f"reviewer {person.reviewer_id}: {person.decisions} decisions{share}")
    if csv_path is not None:
        click.echo(f"labels: {len(found.labels)} rows in {csv_path}")


@main.group()
def ledger() -> None:
    """The money ledger."""


@ledger.command("verify")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def ledger_verify(as_json: bool) -> None:
    """Check every invariant of the ledger; exit 1 with a report when one fails."""
    import fieldcheck.models  # noqa: F401  (every table: foreign keys resolve)
    from fieldcheck.db import Database
    from fieldcheck.money import verify_money

    db = Database(_settings())
    try:
        with db.transaction(read_only=True) as session:
            report = verify_money(session)
    finally:
        db.dispose()
    if as_json:
        click.echo(json.dumps({"ok": report.ok, "checked": report.checked, "problems": report.problems}))
    else:
        figures = ", ".join(f"{count} {what}" for what, count in report.checked.items())
        click.echo(f"checked {figures}")
        for problem in report.problems:
            click.echo(f"PROBLEM: {problem}")
        click.echo("ledger OK" if report.ok else f"{len(report.problems)} problem(s)")
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option(
    "--city", type=click.Choice(["paris", "berlin", "lyon", "madrid"]), default="paris", show_default=True
)
@click.option("--serve", "then_serve", is_flag=True, help="Then run the server (as `fieldcheck serve`).")
@click.option(
    "--any-database", is_flag=True, help="Also seed a configured (non-SQLite) database: a throwaway one only."
)
@_tls_cert_option
@_tls_key_option
@click.pass_context
def demo(
    ctx: click.Context,
    city: str,
    then_serve: bool,
    any_database: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Seed demo data: a client with stores around a city, a funded campaign, and work in every state.

    Reviewers find flagged items and an appeal in their queue; the client sees results and a
    report; a worker with no work yet can try the phone app at /app/ (it needs HTTPS on a phone:
    --tls-cert and --tls-key, here with --serve, or on `fieldcheck serve`). Running it again
    changes nothing.
    """
    from fieldcheck.tools.demo import NotADemoDatabase, seed

    settings = _settings(tls_cert=tls_cert, tls_key=tls_key)
    _check_tls(settings)
    click.echo(f"seeding demo data into {settings.home} ...", err=True)
    try:
        accounts = seed(settings, city=city, allow_any_database=any_database)
    except NotADemoDatabase as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("demo data ready" if accounts.created else "demo data was already there")
    click.echo(f"console:   {settings.base_url}/console/  (after `fieldcheck serve` or ./scripts/run)")
    click.echo(
        f"app:       {settings.base_url}/app/  ({accounts.fresh_worker}: a worker with no work yet, "
        "for the phone app)"
    )
    click.echo(f"password:  {accounts.password}  (every demo account)")
    click.echo(f"client:    {accounts.client}")
    click.echo(f"reviewers: {', '.join(accounts.reviewers)}")
    click.echo(f"admin:     {accounts.admin}")
    click.echo(
        f"workers:   {accounts.workers[0]} ... {accounts.workers[-1]}  "
        "(workers with work in every state: approved, in review, rejected, appealed)"
    )
    if then_serve:
        ctx.invoke(serve, host=None, port=None, no_migrate=True, tls_cert=tls_cert, tls_key=tls_key)


@main.command("check-photos")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, one per line.")
@click.option("--min-short-side", default=1000, show_default=True, help="Resolution rule (px, short side).")
@click.option(
    "--max-bytes", default=None, type=int, help="Largest file accepted (default FIELDCHECK_PHOTO_MAX_BYTES)."
)
@click.option(
    "--reference",
    "references",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A reference photo (repeat, 1 to 5): each file's reference match is run against them.",
)
def check_photos(
    files: tuple[str, ...],
    as_json: bool,
    min_short_side: int,
    max_bytes: int | None,
    references: tuple[str, ...],
) -> None:
    """Run the photo checks on local files, and the duplicate check among them.

    Prints each check's outcome, measured value, threshold and explanation, to calibrate the
    thresholds on your own photos. With --reference, the reference match too (which reference
    matched, and where the photo lies in it).
    """
    from pathlib import Path

    from fieldcheck.checks.hashes import same_picture
    from fieldcheck.checks.models import Outcome
    from fieldcheck.checks.photo import Check, check_photo, reference_features

    limit = max_bytes or _settings().photo_max_bytes
    if len(references) > 5:
        raise click.BadParameter("at most 5 reference photos", param_hint="--reference")
    reference_set = []
    for name in references:
        found, problem = reference_features(Path(name).read_bytes(), max_bytes=limit)
        if found is None:
            raise click.BadParameter(f"{name}: {problem}", param_hint="--reference")
        reference_set.append(found)
    reports: list[tuple[str, Any]] = []
    for name in files:
        report = check_photo(
            Path(name).read_bytes(),
            min_short_side_px=min_short_side,
            max_bytes=limit,
            references=reference_set if references else None,
        )
        if report.reference_index is not None:
            report.measurements["reference"] = references[report.reference_index]
            if report.reference_match is not None and report.reference_match.same_scene:
                report.measurements["reference_outline"] = report.reference_match.corners
        for earlier_name, earlier in reports:
            same_bytes = earlier.sha256 == report.sha256
            twin, distance = (
                (True, 0)
                if same_bytes
                else same_picture(earlier, report)
                if earlier.comparable and report.comparable
                else (False, 64)
            )
            if twin:
                report.checks.append(
                    Check(
                        "duplicate",
                        Outcome.fail,
                        "identical file" if same_bytes else f"{distance} of 64 bits differ",
                        "not the same picture as another file",
                        f"The same picture as {earlier_name}.",
                    )
                )
        reports.append((name, report))
    for name, report in reports:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "file": name,
                        "outcome": report.outcome,
                        "checks": [c.as_dict() for c in report.checks],
                        "measurements": report.measurements,
                        "width": report.width,
                        "height": report.height,
                        "type": report.detected_type,
                        "exif": report.exif,
                    },
                    default=str,
                )
            )
            continue
        click.echo(f"{name}: {report.outcome.value.upper()}")
        for check in report.checks:
            measured = f" {check.value}" if check.value else ""
            limit_text = f" (threshold: {check.threshold})" if check.threshold else ""
            click.echo(f"  {check.outcome.value:4} {check.name}:{measured}{limit_text}")
            click.echo(f"       {check.explanation}")


class _LazyGroup(click.Group):
    """Subcommands imported when used: `fieldcheck --help` does not load OpenCV and the database."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name].rsplit(".", 1)
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)


@main.group(
    cls=_LazyGroup,
    lazy={
        "nearby": "fieldcheck.tools.bench.nearby.nearby_command",
        "photos": "fieldcheck.tools.bench.photos.photos_command",
        "exports": "fieldcheck.tools.bench.exports.exports_command",
        "instant": "fieldcheck.tools.bench.instant.instant_command",
        "fleet": "fieldcheck.tools.bench.fleet.fleet_command",
    },
)
def bench() -> None:
    """Benchmarks: commands that print figures (medians, p99 and ratios measured in one run)."""


@main.group(
    "eval",
    cls=_LazyGroup,
    lazy={
        "photos": "fieldcheck.tools.evaluate.photos_command",
        "variants": "fieldcheck.tools.evaluate.variants_command",
        "faces": "fieldcheck.tools.faces.faces_command",
    },
)
def eval_group() -> None:
    """How right the photo checks are on labelled photos (yours, or a set built from ../shared/photos)."""


if __name__ == "__main__":
    main()
