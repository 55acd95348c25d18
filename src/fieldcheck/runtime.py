"""The parts a fieldcheck process runs on, built from settings: database, storage, jobs.

`serve`, `worker`, `scheduler` and the other commands all build one Runtime; the HTTP app (app.py)
is composed on top of it.
"""

from __future__ import annotations

import importlib
import logging
from functools import cached_property
from typing import TYPE_CHECKING

from fieldcheck.auth.security import AccountGate, Passwords, Tokens
from fieldcheck.db import Database
from fieldcheck.jobs import JobSystem
from fieldcheck.ledger.providers import (
    PaymentProvider,
    PayoutProvider,
    SepaXmlPayoutProvider,
    SimulatedPaymentProvider,
)
from fieldcheck.ratelimit import RateLimits, Throttle, throttle_for
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, create_storage

if TYPE_CHECKING:
    from fieldcheck.checks.duplicates import HashIndex

log = logging.getLogger("fieldcheck.runtime")

# Modules that declare jobs; importing them registers their actors.
JOB_MODULES = (
    "fieldcheck.jobs",
    "fieldcheck.auth.jobs",
    "fieldcheck.assignments.jobs",
    "fieldcheck.photos.jobs",
    "fieldcheck.references.jobs",
    "fieldcheck.idempotency",
    "fieldcheck.ledger.jobs",
    "fieldcheck.reviews.jobs",
    "fieldcheck.webhooks.jobs",
    "fieldcheck.results.jobs",
    "fieldcheck.exports.jobs",
    "fieldcheck.privacy.jobs",
    "fieldcheck.money",
    "fieldcheck.console.jobs",
)


def load_job_modules() -> None:
    for name in JOB_MODULES:
        importlib.import_module(name)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.storage: ObjectStorage = create_storage(settings)
        load_job_modules()
        self.jobs = JobSystem(self)
        self._started = False

    @cached_property
    def passwords(self) -> Passwords:
        return Passwords(self.settings)

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.settings)

    @cached_property
    def account_gate(self) -> AccountGate:
        return AccountGate(self.db, self.settings.account_check_cache_s)

    @cached_property
    def rate_limits(self) -> RateLimits:
        return RateLimits(self.db)

    @cached_property
    def throttle(self) -> Throttle:
        return throttle_for(self.settings)

    @cached_property
    def payment_provider(self) -> PaymentProvider:
        return SimulatedPaymentProvider()

    @cached_property
    def payout_provider(self) -> PayoutProvider:
        return SepaXmlPayoutProvider.from_settings(self.storage, self.settings)

    @cached_property
    def hash_index(self) -> HashIndex:
        """Every stored perceptual hash, in memory (loaded on first use: API processes never do)."""
        from fieldcheck.checks.duplicates import HashIndex

        return HashIndex()

    def bound_photo_decodes(self) -> None:
        """The photo checks run in this process's workers: bound how many images they hold decoded."""
        from fieldcheck.checks import imaging  # OpenCV loads only in processes that check photos

        imaging.limit_concurrent_decodes(self.settings.max_concurrent_decodes)

    def start(self, *, worker: bool, relay: bool, scheduler: bool) -> None:
        if worker:
            self.bound_photo_decodes()
            self.jobs.start_worker()
        self.jobs.start_loops(relay=relay, scheduler=scheduler)
        if relay:
            # Jobs committed while no process was up to send them go out now.
            try:
                self.jobs.relay_all()
            except Exception:
                log.exception("the outbox could not be relayed at start; the relay loop will retry")
        self._started = True

    def close(self) -> None:
        self.jobs.close()
        self.db.dispose()
