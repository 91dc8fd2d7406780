"""What each event adds to the indicators: the one place where they are defined.

Per e-service (and for all of them together, `ALL`):

- `started`: a sign-in the e-service asked for: a request the citizen was sent to sign in or
  consent for (counted from the stored request once its time has run out, on the day it
  started: anonymous requests leave no audit entry), or one answered at once by the single
  sign-on session (`signin.started`). A `prompt=none` request that fails starts nothing;
- `completed`: an authorization code issued to it (`signin.completed`), split by assurance
  level (`acr`) and by methods (`amr`); `completed_sso` those answered by an existing single
  sign-on session; `seconds`: for the others, whole seconds from the request to the code;
- `failed`: a failed step of a sign-in for it, by reason (`password:credentials`,
  `otp:invalid_code`, `cancelled`, ...);
- `abandoned`: a sign-in left unfinished until its request expired, by the step reached
  (counted from the request, like `started`);
- `consents_given`, `consents_revoked`;
- distinct citizens (exact, per period): `citizens` (completed a sign-in), `new_citizens`
  (the first sign-in ever to that e-service; to any e-service for `ALL`);
- `ratings`: ratings of it, by source and score (`signin:4`, `eservice:2`), on the day of the
  sign-in or transaction rated (`feedback.rated`); `feedback_asked`, `feedback_skipped`: our
  questions after a sign-in shown and skipped.

System-wide only (`ALL`): second factors enrolled, recovery codes used, lockouts and password
resets, each as a count of events and of distinct citizens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

ALL = "*"
MAX_SECONDS = 3600  # longer sign-ins are counted as one hour

# Event types the rollup reads (others are skipped without being loaded). The requests that
# waited for the citizen add `signin.started` and `signin.abandoned` without any event.
SIGNIN_STEPS = {
    "auth.password": "password",
    "auth.otp": "otp",
    "auth.recovery": "recovery",
    "auth.email_otp": "email_otp",
    "auth.email_otp_sent": "email_otp",
    "auth.totp_enrol": "enrol",
}
SYSTEM = {
    # event type: (count metric, distinct-citizens metric)
    "auth.totp_enrol": ("totp_enrolled", "totp_enrolled_citizens"),
    "auth.recovery": ("recovery_used", "recovery_citizens"),
    "auth.account_locked": ("lockouts", "locked_citizens"),
    "auth.password_reset": ("password_resets", "reset_citizens"),
}
FEEDBACK = {
    "feedback.rated": "ratings",
    "feedback.asked": "feedback_asked",
    "feedback.skipped": "feedback_skipped",
}
RATING_SOURCES = ("signin", "eservice")
SCORES = (1, 2, 3, 4, 5)
TYPES = sorted(
    {
        "signin.started",
        "signin.completed",
        "signin.cancelled",
        "consent.granted",
        "consent.revoked",
        *FEEDBACK,
        *SIGNIN_STEPS,
        *SYSTEM,
    }
)


@dataclass
class Contribution:
    """What one event adds: counts `(client, metric, dim) -> n`, distinct citizens
    `(client, metric, user)`, and first sign-ins `(client, user)`; on the day of the event,
    or on `day` when it is about another one (a rating of an earlier transaction)."""

    counts: list[tuple[str, str, str]] = field(default_factory=list)
    distinct: list[tuple[str, str, int]] = field(default_factory=list)
    first: list[tuple[str, int]] = field(default_factory=list)
    day: date | None = None


def is_eservice(client_id: str | None) -> bool:
    """An e-service's sign-in (the console and the account pages are not e-services)."""
    return bool(client_id) and not str(client_id).startswith("idp:")


def _both(client_id: str) -> tuple[str, str]:
    return (client_id, ALL)


def contribution(
    type: str, outcome: str, client_id: str | None, user_id: int | None, data: dict[str, Any]
) -> Contribution:
    found = Contribution()
    success = outcome == "success"
    if (type in SYSTEM and success) or type == "auth.account_locked":
        metric, citizens = SYSTEM[type]
        found.counts.append((ALL, metric, ""))
        if user_id is not None:
            found.distinct.append((ALL, citizens, user_id))
    if not is_eservice(client_id):
        return found
    assert client_id is not None
    if type == "signin.started":
        found.counts += [(c, "started", "") for c in _both(client_id)]
    elif type == "signin.completed" and user_id is not None:
        amr = "+".join(sorted(str(m) for m in data.get("amr") or [])) or "none"
        sso = bool(data.get("sso"))
        seconds = data.get("seconds")
        for c in _both(client_id):
            found.counts += [
                (c, "completed", ""),
                (c, "acr", str(data.get("acr") or "none")[:64]),
                (c, "amr", amr[:64]),
            ]
            if sso:
                found.counts.append((c, "completed_sso", ""))
            elif isinstance(seconds, int) and seconds >= 0:
                found.counts.append((c, "seconds", str(min(seconds, MAX_SECONDS))))
            found.distinct.append((c, "citizens", user_id))
            found.first.append((c, user_id))
    elif type == "signin.abandoned":
        step = str(data.get("step") or "unknown")[:64]
        found.counts += [(c, "abandoned", step) for c in _both(client_id)]
    elif type == "signin.cancelled" or (type in SIGNIN_STEPS and not success):
        step = "cancelled" if type == "signin.cancelled" else SIGNIN_STEPS[type]
        reason = str(data.get("reason") or "")
        dim = step if not reason or reason == step else f"{step}:{reason}"
        found.counts += [(c, "failed", dim[:64]) for c in _both(client_id)]
    elif type == "feedback.rated":
        source, score = data.get("source"), data.get("score")
        if source in RATING_SOURCES and score in SCORES and not isinstance(score, bool):
            found.counts += [(c, "ratings", f"{source}:{score}") for c in _both(client_id)]
            found.day = _day(data.get("on"))
    elif type in FEEDBACK:
        found.counts += [(c, FEEDBACK[type], "") for c in _both(client_id)]
    elif type == "consent.granted":
        found.counts += [(c, "consents_given", "") for c in _both(client_id)]
    elif type == "consent.revoked":
        found.counts += [(c, "consents_revoked", "") for c in _both(client_id)]
    return found


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
