"""The key performance indicators of a range (the service standard's four, and the identity
indicators), each beside its value in the range before it (docs/indicators.md defines them).

The building blocks are shared by the dashboard's report (`idp.stats.indicators`) and the
public page's monthly figures (`idp.stats.public`):

- `satisfaction`: the ratings of one source (our question after a sign-in, or the e-service's
  own) as a count, a mean score and the share satisfied (4 or 5);
- `reported`: digital take-up and the cost per transaction, from the transactions by channel
  and the costs of whole months (`idp.services.transactions`);
- `compare`: a range's figures beside the previous range's, with the change.

Suppression follows the indicators' rule: a count from 1 to `min_cell - 1` is not shown, and a
rate or mean is shown only when the counts it comes from are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.db.models import ChannelTotal, ServiceCost
from idp.stats.periods import next_start, start_of
from idp.stats.rules import RATING_SOURCES, SCORES

Number = int | float | None
SATISFIED = (4, 5)
ONLINE = "online"


def small(value: int, min_cell: int) -> bool:
    """A count that could be about so few citizens that it is not shown."""
    return 0 < value < min_cell


def shown(value: int, min_cell: int) -> int | None:
    return None if small(value, min_cell) else value


def ratio(part: Number, whole: Number, digits: int = 4) -> float | None:
    if part is None or whole is None or whole == 0:
        return None
    return round(part / whole, digits)


# Satisfaction --------------------------------------------------------------------------------


def satisfaction(ratings: Mapping[str, int], source: str, min_cell: int) -> dict[str, Any]:
    """One source's ratings (`ratings`: the `ratings` cells, `source:score -> count`): how
    many, the mean score (1-5), the share satisfied (4 or 5), and how many of each score."""
    counts = {score: int(ratings.get(f"{source}:{score}", 0)) for score in SCORES}
    total = sum(counts.values())
    if small(total, min_cell):
        return {
            "ratings": None,
            "mean": None,
            "satisfied": None,
            "scores": dict.fromkeys(map(str, SCORES)),
        }
    return {
        "ratings": total,
        "mean": ratio(sum(score * n for score, n in counts.items()), total, 2),
        "satisfied": ratio(sum(counts[score] for score in SATISFIED), total),
        "scores": {str(score): shown(n, min_cell) for score, n in counts.items()},
    }


def satisfactions(ratings: Mapping[str, int], min_cell: int) -> dict[str, dict[str, Any]]:
    """Every source's satisfaction: `signin` (how easy it was to sign in, our question) and
    `eservice` (the e-service's own rating of its transaction)."""
    return {source: satisfaction(ratings, source, min_cell) for source in RATING_SOURCES}


# Transactions by channel and costs -------------------------------------------------------------


@dataclass
class Reported:
    """What the e-services reported for some months: transactions by channel and cost."""

    months: list[date] = field(default_factory=list)
    channels: dict[str, int | None] = field(default_factory=dict)
    transactions: int | None = None  # all channels
    online: int | None = None
    digital_take_up: float | None = None
    cost: float | None = None  # of the e-services (and months) that reported transactions
    cost_per_transaction: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "months": [month.isoformat()[:7] for month in self.months],
            "transactions": self.transactions,
            "online_transactions": self.online,
            "digital_take_up": self.digital_take_up,
            "cost": self.cost,
            "cost_per_transaction": self.cost_per_transaction,
            "channels": self.channels,
        }


def whole_months(since: date, until: date) -> list[date]:
    """The months that lie wholly inside the range."""
    found = []
    month = start_of("m", since)
    if month < since:
        month = next_start("m", month)
    while next_start("m", month) - timedelta(days=1) <= until:
        found.append(month)
        month = next_start("m", month)
    return found


def reported_cells(
    db: Session, client_ids: Iterable[str] | None, months: list[date]
) -> tuple[dict[tuple[str, date], dict[str, int]], dict[tuple[str, date], int]]:
    """The stored transactions `(client, month) -> channel -> n` and costs (hundredths) of
    `months` for these e-services (None: all of them)."""
    channels: dict[tuple[str, date], dict[str, int]] = defaultdict(dict)
    costs: dict[tuple[str, date], int] = {}
    if not months:
        return channels, costs
    wanted = None if client_ids is None else list(client_ids)
    query = select(
        ChannelTotal.client_id, ChannelTotal.month, ChannelTotal.channel, ChannelTotal.transactions
    ).where(ChannelTotal.month.in_(months))
    if wanted is not None:
        query = query.where(ChannelTotal.client_id.in_(wanted))
    for client_id, month, channel, transactions in db.execute(query):
        channels[(client_id, month)][channel] = int(transactions)
    cost_query = select(ServiceCost.client_id, ServiceCost.month, ServiceCost.amount_minor).where(
        ServiceCost.month.in_(months)
    )
    if wanted is not None:
        cost_query = cost_query.where(ServiceCost.client_id.in_(wanted))
    for client_id, month, amount in db.execute(cost_query):
        costs[(client_id, month)] = int(amount)
    return channels, costs


def reported(
    channels: Mapping[tuple[str, date], Mapping[str, int]],
    costs: Mapping[tuple[str, date], int],
    months: list[date],
    min_cell: int,
) -> Reported:
    """Digital take-up (online transactions over those of every channel) and the cost per
    transaction (cost over transactions) of the e-services in `channels` and `costs` over
    `months`: take-up over the e-services (and months) that reported transactions, the cost
    per transaction over those that reported both a cost and transactions."""
    by_channel: dict[str, int] = defaultdict(int)
    costed_cents = costed_transactions = 0
    for (client_id, month), counts in channels.items():
        if month not in months:
            continue
        for channel, count in counts.items():
            by_channel[channel] += count
        cents, handled = costs.get((client_id, month)), sum(list(counts.values()))
        if cents is not None and handled:
            costed_cents += cents
            costed_transactions += handled
    found = Reported(months=list(months))
    if not by_channel:
        return found
    total, online = sum(by_channel.values()), by_channel.get(ONLINE, 0)
    found.channels = {name: shown(count, min_cell) for name, count in sorted(by_channel.items())}
    found.transactions, found.online = shown(total, min_cell), shown(online, min_cell)
    found.digital_take_up = ratio(found.online, found.transactions)
    if costed_transactions:
        found.cost = costed_cents / 100
        if not small(costed_transactions, min_cell):
            found.cost_per_transaction = round(costed_cents / 100 / costed_transactions, 2)
    return found


def service_standard(
    completion_rate: float | None, rated: Mapping[str, Mapping[str, Any]], money: Reported
) -> dict[str, Number]:
    """The service standard's four: completion rate, user satisfaction (the e-service's own
    ratings), digital take-up and cost per transaction."""
    return {
        "completion_rate": completion_rate,
        "user_satisfaction": rated["eservice"]["satisfied"],
        "digital_take_up": money.digital_take_up,
        "cost_per_transaction": money.cost_per_transaction,
    }


# A range against the one before it ----------------------------------------------------------


def previous_range(since: date, until: date) -> tuple[date, date]:
    """The range just before: as many whole months when the range is whole months (January
    before February), else as many days."""
    months = whole_months(since, until)
    if months and months[0] == since and next_start("m", months[-1]) - timedelta(days=1) == until:
        start = since
        for _ in months:
            start = start_of("m", start - timedelta(days=1))
        return start, since - timedelta(days=1)
    length = (until - since).days + 1
    return since - timedelta(days=length), since - timedelta(days=1)


@dataclass(frozen=True)
class Figure:
    """A figure of a range, the same figure of the range before, and the change (a difference
    of counts, or of shares in points of 0-1; none when either is not shown)."""

    value: Number
    previous: Number

    @property
    def change(self) -> Number:
        if self.value is None or self.previous is None:
            return None
        difference = self.value - self.previous
        return difference if isinstance(difference, int) else round(difference, 4)

    def as_dict(self) -> dict[str, Number]:
        return {"value": self.value, "previous": self.previous, "change": self.change}


FIGURES = (
    # The service standard's four
    "completion_rate",
    "user_satisfaction",
    "digital_take_up",
    "cost_per_transaction",
    # What they come from, and the other source of satisfaction
    "user_satisfaction_mean",
    "user_satisfaction_ratings",
    "signin_satisfaction",
    "signin_satisfaction_mean",
    "signin_satisfaction_ratings",
    "transactions",
    "online_transactions",
    "cost",
    # Identity
    "active_citizens",
    "adult_population_share",
    "second_factor_adoption",
    "sso_reuse",
    "median_seconds",
    "p95_seconds",
)
GROUPS = ("assurance_mix", "failure_reasons")


@dataclass
class Measures:
    """One range's figures (`FIGURES`), the shares of assurance levels and the counts of
    failure reasons; `absent`: what a level or reason not listed stands for in each group
    (0 when the range's figures are shown, None when they are suppressed)."""

    figures: dict[str, Number]
    assurance_mix: dict[str, float | None]
    failure_reasons: dict[str, int | None]
    absent: dict[str, Number] = field(default_factory=dict)


@dataclass
class Kpis:
    """A range's figures beside the previous range's (`previous_since`..`previous_until`)."""

    previous_since: date
    previous_until: date
    currency: str
    figures: dict[str, Figure]
    assurance_mix: dict[str, Figure]
    failure_reasons: dict[str, Figure]

    def as_dict(self) -> dict[str, Any]:
        return {
            "previous_since": self.previous_since.isoformat(),
            "previous_until": self.previous_until.isoformat(),
            "currency": self.currency,
            **{name: figure.as_dict() for name, figure in self.figures.items()},
            **{
                group: {key: figure.as_dict() for key, figure in getattr(self, group).items()}
                for group in GROUPS
            },
        }

    def lines(self) -> list[tuple[str, str, Number, Number, Number]]:
        """(figure, key within its group, value, previous, change), for a flat table."""
        found = [(name, "", f.value, f.previous, f.change) for name, f in self.figures.items()]
        for group in GROUPS:
            for key, f in getattr(self, group).items():
                found.append((group, key, f.value, f.previous, f.change))
        return found


def _paired(current: Measures, previous: Measures, group: str) -> dict[str, Figure]:
    now, before = getattr(current, group), getattr(previous, group)
    return {
        key: Figure(
            now.get(key, current.absent.get(group)), before.get(key, previous.absent.get(group))
        )
        for key in sorted({*now, *before})
    }


def compare(
    current: Measures, previous: Measures, *, since: date, until: date, currency: str
) -> Kpis:
    """`current` beside `previous`, the range from `since` through `until`."""
    return Kpis(
        since,
        until,
        currency,
        {name: Figure(current.figures[name], previous.figures[name]) for name in FIGURES},
        *(_paired(current, previous, group) for group in GROUPS),
    )
