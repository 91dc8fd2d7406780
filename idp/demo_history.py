"""Demo data for the indicators: 90 days of synthetic history for five e-services, so that the
first look at the dashboard and the public statistics shows real figures.

Everything made here is marked as demo data: three e-services named "... (demo data)" beside
the two example e-services, citizens named `synthetic-NNNNN` (who have no password and cannot
sign in), and the banner says so. The history is the same on every fresh start (a fixed
seed, dated back from today): sign-ins with realistic outcomes (completed, by single sign-on
or not; wrong passwords and codes; requests abandoned), answers to the question after a
sign-in, the e-services' own ratings with a few comments, and their transactions by channel
and costs. Its events are written already sealed into the audit chain, in bulk, then counted;
the demo's own sign-ins add to it from then on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from idp.audit import chain
from idp.db.models import Client, FeedbackRating, Interaction, TotpCredential, User
from idp.runtime import Runtime
from idp.security import random_identifier
from idp.services import clients as client_service
from idp.services import transactions

DAYS = 90
CITIZENS = 2500
MARKER = "demo-etax"  # present once the history is seeded
SEED = 2024
ACTOR = "demo"


@dataclass(frozen=True)
class Service:
    client_id: str
    name: str | None  # None: one of the example e-services, registered by `idp.demo.seed`
    daily: int  # sign-ins on a weekday at the end of the 90 days
    online_share: tuple[float, float]  # digital take-up at the start and at the end
    monthly_cost: int  # in the currency's units
    own_ratings: tuple[int, ...]  # weights of the scores 1..5 the e-service reports


SERVICES = (
    Service("demo-etax", "e-tax (demo data)", 70, (0.62, 0.81), 5_400_000, (3, 4, 10, 38, 45)),
    Service(
        "demo-esocial", "e-social (demo data)", 45, (0.35, 0.52), 7_900_000, (8, 12, 20, 35, 25)
    ),
    Service(
        "demo-ehealth", "e-health (demo data)", 35, (0.48, 0.57), 3_100_000, (5, 7, 18, 40, 30)
    ),
    Service("e-licensing", None, 25, (0.70, 0.86), 1_200_000, (2, 3, 9, 36, 50)),
    Service("e-justice", None, 15, (0.22, 0.31), 2_600_000, (10, 14, 26, 30, 20)),
)
EASE = (3, 5, 12, 35, 45)  # how easy the sign-in was, 1..5, as citizens answer
COMMENTS = (
    "Շատ արագ էր, շնորհակալություն։",  # noqa: RUF001
    "The one-time code page took me a while to find.",
    "Удобно, но хотелось бы вход по отпечатку.",
    "Everything worked on my phone.",
    "Մուտքը հեշտ էր, բայց հավելվածը երկար բացվեց։",  # noqa: RUF001
    "Не пришёл код, пришлось ждать.",  # noqa: RUF001
)


def seeded(db: Session) -> bool:
    return db.scalar(select(Client.id).where(Client.client_id == MARKER)) is not None


def _eservices(db: Session) -> None:
    for service in SERVICES:
        if service.name is not None:
            client_service.register_client(
                db,
                client_service.NewClient(
                    name=service.name,
                    client_id=service.client_id,
                    redirect_uris=[f"http://localhost:8009/{service.client_id}/callback"],
                    first_party=True,
                ),
                actor=ACTOR,
            )
        rate = 0.0 if service.name is not None else 0.2  # the demo's own sign-ins are asked
        client_service.set_indicator_settings(
            db, service.client_id, public_stats=True, feedback_sampling_rate=rate, actor=ACTOR
        )


def _citizens(db: Session, runtime: Runtime, rng: random.Random, first_day: datetime) -> list[int]:
    """Synthetic accounts (no password), most with an authenticator app."""
    made: list[dict[str, Any]] = []
    for n in range(1, CITIZENS + 1):
        created = first_day - timedelta(days=rng.randrange(0, 400), seconds=rng.randrange(86400))
        made.append(
            {
                "sub": random_identifier(),
                "username": f"synthetic-{n:05d}",
                "given_name": "Synthetic",
                "family_name": f"Citizen {n}",
                "created_at": created,
                "updated_at": created,
            }
        )
    db.execute(insert(User), made)
    ids = list(
        db.scalars(select(User.id).where(User.username.like("synthetic-%")).order_by(User.id))
    )
    seed = runtime.secrets.encrypt("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")  # a seed nobody uses
    factors = [
        {
            "user_id": user_id,
            "secret_encrypted": seed,
            "confirmed_at": row["created_at"] + timedelta(days=rng.randrange(0, 120)),
            "created_at": row["created_at"],
        }
        for user_id, row in zip(ids, made, strict=True)
        if rng.random() < 0.74
    ]
    db.execute(insert(TotpCredential), factors)
    return ids


def _event(at: datetime, type: str, client: str, **values: Any) -> dict[str, Any]:
    """An audit entry's values (`idp.audit.chain.append` seals and writes them)."""
    return {"at": at, "type": type, "outcome": "success", "client_id": client, "data": {}} | values


@dataclass
class History:
    events: list[dict[str, Any]]
    ratings: list[dict[str, Any]]
    abandoned: list[dict[str, Any]]


def _score(rng: random.Random, weights: tuple[int, ...]) -> int:
    return rng.choices((1, 2, 3, 4, 5), weights=weights)[0]


def _signins(rng: random.Random, citizens: list[int], today: date) -> History:
    found = History([], [], [])
    start = today - timedelta(days=DAYS)  # through yesterday
    for offset in range(DAYS):
        day = start + timedelta(days=offset)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        growth = 0.75 + 0.25 * offset / (DAYS - 1)
        weekend = 0.45 if day.weekday() >= 5 else 1.0
        for service in SERVICES:
            expected = service.daily * growth * weekend
            for _ in range(max(0, round(rng.gauss(expected, expected**0.5)))):
                _one_signin(found, rng, service, rng.choice(citizens), midnight)
    found.events.sort(key=lambda event: event["at"])
    return found


def _one_signin(
    found: History, rng: random.Random, service: Service, user: int, midnight: datetime
) -> None:
    at = midnight + timedelta(seconds=rng.randrange(6 * 3600, 23 * 3600))
    client = service.client_id
    roll = rng.random()
    if roll < 0.05:  # left unfinished: counted from its request, once it has expired
        found.abandoned.append(
            {
                "id": random_identifier(),
                "client_id": client,
                "params": {},
                "amr": ["pwd"] if rng.random() < 0.4 else [],
                "created_at": at,
                "expires_at": at + timedelta(minutes=15),
            }
        )
        return
    events = found.events
    events.append(_event(at, "signin.started", client))
    if roll < 0.15:
        step = "auth.password" if roll < 0.12 else "auth.otp"
        reason = "credentials" if step == "auth.password" else "invalid_code"
        failed = at + timedelta(seconds=rng.randrange(5, 60))
        events.append(
            _event(failed, step, client, outcome="failure", user_id=user, data={"reason": reason})
        )
        return
    sso = rng.random() < 0.3
    seconds = None if sso else min(int(rng.lognormvariate(3.2, 0.5)), 600)
    done = at + timedelta(seconds=seconds or 1)
    data = {
        "acr": "substantial" if rng.random() < 0.93 else "low",
        "amr": ["mfa", "otp", "pwd"],
        "sso": sso,
        "seconds": seconds,
    }
    events.append(_event(done, "signin.completed", client, user_id=user, data=data))
    if not sso and rng.random() < 0.08:  # asked how easy it was
        events.append(_event(done, "feedback.asked", client))
        if rng.random() < 0.62:
            _rating(found, rng, "signin", client, _score(rng, EASE), done)
        else:
            events.append(_event(done + timedelta(seconds=4), "feedback.skipped", client))
    if rng.random() < 0.07:  # the e-service's own rating of the transaction
        _rating(
            found,
            rng,
            "eservice",
            client,
            _score(rng, service.own_ratings),
            done + timedelta(minutes=rng.randrange(2, 30)),
        )


def _rating(
    found: History, rng: random.Random, source: str, client: str, score: int, at: datetime
) -> None:
    comment = rng.choice(COMMENTS) if rng.random() < 0.12 else None
    found.ratings.append(
        {
            "source": source,
            "client_id": client,
            "score": score,
            "comment": comment,
            "comment_expires_at": at + timedelta(days=90) if comment else None,
            "occurred_at": at,
            "created_at": at,
        }
    )
    data = {"source": source, "score": score, "on": at.date().isoformat()}
    found.events.append(_event(at, "feedback.rated", client, data=data))


def _reported(db: Session, rng: random.Random, today: date, completed: dict[str, int]) -> None:
    """Each e-service's transactions by channel and cost, for every month of the history."""
    months = sorted(
        {(today - timedelta(days=offset)).replace(day=1) for offset in range(1, DAYS + 1)}
    )
    channels, costs = [], []
    for index, month in enumerate(months):
        share = index / max(len(months) - 1, 1)
        for service in SERVICES:
            low, high = service.online_share
            online_share = low + (high - low) * share
            online = int(completed[service.client_id] / len(months) * rng.uniform(1.1, 1.4))
            total = int(online / online_share)
            rest = total - online
            split = {"online": online, "in_person": int(rest * 0.6), "phone": int(rest * 0.3)}
            split["post"] = rest - split["in_person"] - split["phone"]
            key = month.isoformat()[:7]
            channels += [
                {"client_id": service.client_id, "month": key, "channel": c, "transactions": n}
                for c, n in split.items()
            ]
            amount = service.monthly_cost * rng.uniform(0.95, 1.05)
            costs.append({"client_id": service.client_id, "month": key, "amount": round(amount)})
    transactions.set_channel_totals(db, channels, actor=ACTOR, today=today)
    transactions.set_costs(db, costs, actor=ACTOR, today=today)


def seed(runtime: Runtime, *, today: date | None = None) -> bool:
    """Seed the history once (False when it is there already)."""
    today = today or datetime.now(UTC).date()
    rng = random.Random(SEED)  # noqa: S311 - the same demo every time, not a secret
    first_day = datetime.combine(today - timedelta(days=DAYS), datetime.min.time(), UTC)
    with runtime.db.transaction() as db:
        if seeded(db):
            return False
        _eservices(db)
        citizens = _citizens(db, runtime, rng, first_day)
    history = _signins(rng, citizens, today)
    with runtime.db.transaction() as db:
        chain.seal(db)  # what the demo did so far comes first in the chain
        chain.append(db, history.events)
        db.execute(insert(FeedbackRating), history.ratings)
        db.execute(insert(Interaction), history.abandoned)
        completed: dict[str, int] = {service.client_id: 0 for service in SERVICES}
        for event in history.events:
            if event["type"] == "signin.completed":
                completed[event["client_id"]] += 1
        _reported(db, rng, today, completed)
    return True
