"""What workers are told about the automated decisions (EU Platform Work Directive, Art. 9), built
from the check registry, the campaign defaults and the settings in force: every check, its
thresholds and effect, how a decision follows, review and appeal deadlines, the pay floor,
reservations, and what data is kept and who sees it. Nothing here is written by hand twice.
"""

from __future__ import annotations

from typing import Any

from fieldcheck.campaigns.schemas import CampaignCreate
from fieldcheck.checks.registry import EFFECTS, rules
from fieldcheck.i18n import Text, _, text
from fieldcheck.settings import Settings

SCOPES = {
    "photo": _("each photo, as soon as it is uploaded, and again at submission"),
    "visit": _("the visit, when it is submitted"),
}


def _default(name: str) -> Any:
    return CampaignCreate.model_fields[name].default


def document(settings: Settings, language: str | None = None) -> dict[str, Any]:
    """The whole account, rendered in `language` (the request's by default)."""

    def say(found: Text) -> str:
        return found.render(language)

    checks = [
        {
            "name": rule.name,
            "title": say(rule.title),
            "scope": rule.scope,
            "when": say(text(SCOPES[rule.scope])),
            "reads": say(rule.reads),
            "measures": say(rule.measures),
            "thresholds": [say(t) for t in rule.thresholds],
            "outcomes": {outcome.value: say(text(EFFECTS[outcome])) for outcome in rule.outcomes},
            "notes": [say(n) for n in rule.notes],
        }
        for rule in rules(settings)
    ]
    review_hours = _default("review_deadline_hours")
    reservation_minutes = _default("reservation_minutes")
    floors = ", ".join(
        f"{cents / 100:.2f} {currency}" for currency, cents in settings.pay_floor_cents_per_hour.items()
    )
    return {
        "generated_from": say(text(_("the checks the code runs and the settings in force on this server"))),
        "checks": checks,
        "decision": [
            say(text(_("Any failed check rejects the work, with every reason in plain words."))),
            say(text(_("Otherwise, any warning sends it to a person, who approves or rejects it."))),
            say(text(_("Otherwise it is approved and paid at once."))),
            say(
                text(
                    _(
                        "A campaign may send every submission to a person, and a share of approved work is "
                        "audited by a person afterwards: the payment stands either way."
                    )
                )
            ),
        ],
        "review": {
            "deadline_hours_default": review_hours,
            "text": say(
                text(
                    _(
                        "Work sent to a person is decided within the campaign's review deadline ({hours} hours "
                        "unless the campaign says otherwise); work nobody reviews in time is approved and paid "
                        "automatically: the platform, not you, bears its delays."
                    ),
                    hours=review_hours,
                )
            ),
        },
        "appeal": {
            "window_days": settings.appeal_window_days,
            "response_days": settings.appeal_response_days,
            "text": say(
                text(
                    _(
                        "A rejection can be appealed once, within {days} days, with a message. Another person "
                        "than the one who rejected it decides within {response} days, and that decision is final; "
                        "an appeal not answered in time is approved and paid."
                    ),
                    days=settings.appeal_window_days,
                    response=settings.appeal_response_days,
                )
            ),
        },
        "pay_floor": {
            "cents_per_hour": settings.pay_floor_cents_per_hour,
            "min_visits": settings.pay_floor_min_visits,
            "text": say(
                text(
                    _(
                        "A campaign is not offered unless its reward per task, divided by the minutes the client "
                        "estimates a task takes, makes at least {floors} per hour. Once {visits} visits have been "
                        "made, the real time they took (from reservation to submission, the median) is used "
                        "too: if it makes the pay fall below the floor, the campaign stops taking new "
                        "reservations until the client raises the reward, and reservations already made go on. "
                        "The time to reach the store is working time too: the app sends when your visit's first "
                        "photo was taken (never where you were on the way), and the client sees the median "
                        "time it takes to get there."
                    ),
                    floors=floors,
                    visits=settings.pay_floor_min_visits,
                )
            ),
        },
        "reservations": {
            "max": settings.max_reservations_per_worker,
            "new_worker_max": settings.new_worker_max_reservations,
            "minutes_default": reservation_minutes,
            "text": say(
                text(
                    _(
                        "You may hold {most} reservations at once ({new} until a first visit of yours is "
                        "approved). A reservation holds a place for the campaign's reservation time ({minutes} "
                        "minutes unless the campaign says otherwise); then the place goes back to others."
                    ),
                    most=settings.max_reservations_per_worker,
                    new=settings.new_worker_max_reservations,
                    minutes=reservation_minutes,
                )
            ),
        },
        "data": [
            say(
                text(
                    _(
                        "Your position is read once, when you submit a visit, with its precision: nothing "
                        "tracks you. The client sees the distance to the store, not the position. The "
                        "position, its precision and your phone's identifier are deleted {days} days after "
                        "the decision is final; the distance stays for the client's audit."
                    ),
                    days=settings.original_retention_days,
                )
            ),
            say(
                text(
                    _(
                        "Your photos are kept as you sent them, for the checks, reviewers and appeals, and "
                        "deleted with their metadata (EXIF, GPS) {days} days after the decision is final. The "
                        "client receives copies without any metadata (no EXIF, no GPS), with faces blurred: "
                        "those copies stay for the client's audit. Photos you do not submit are deleted soon "
                        "after the reservation ends."
                    ),
                    days=settings.original_retention_days,
                )
            ),
            say(
                text(
                    _(
                        "An approval is final when it is made (once audited, when it is drawn for an audit); "
                        "a rejection, once the {window} days to appeal have passed or the appeal was decided."
                    ),
                    window=settings.appeal_window_days,
                )
            ),
            say(
                text(
                    _(
                        "Reviewers see your work and its checks, never your name; you see whether a person or "
                        "the system decided, never who."
                    )
                )
            ),
            say(
                text(
                    _(
                        "You can download everything fieldcheck keeps about you, photos included (in the app: "
                        "Settings, Your data), and close your account: your name, e-mail address and bank "
                        "details are then erased; work you delivered is still decided and paid."
                    )
                )
            ),
        ],
    }
