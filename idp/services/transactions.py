"""The e-services' transactions by channel and their costs, month by month: what digital
take-up and the cost per transaction are computed from.

Administrators set them as a list (admin API) or import them as CSV (admin API, `idp stats
import-channels`, `idp stats import-costs`), one row per e-service, month and channel
(`client_id,month,channel,transactions`), or per e-service and month (`client_id,month,amount`,
in the `stats_currency`). A row replaces what was stored for its e-service, month (and
channel). Every row is checked before anything is written: an unknown e-service, a month not
written `YYYY-MM` or not begun yet, an unknown channel, a negative or fractional count, an
amount with more than two decimals, or a row repeated refuses the whole list or file, naming
its line (or item), and nothing is written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import events
from idp.db.inserts import upsert
from idp.db.models import ChannelTotal, Client, ServiceCost
from idp.i18n import N_
from idp.reasons import Reason
from idp.services.errors import InvalidInput

ONLINE = "online"  # the digital channel: what digital take-up counts
CHANNELS = (ONLINE, "in_person", "phone", "post", "other")
CHANNEL_COLUMNS = ("client_id", "month", "channel", "transactions")
COST_COLUMNS = ("client_id", "month", "amount")
MAX_ROWS = 10000
MAX_TRANSACTIONS = 10**12
MAX_AMOUNT = Decimal(10**13)
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
WHOLE = re.compile(r"^\d{1,13}$")

Row = TypeVar("Row", "ChannelRow", "CostRow")
KEYS = frozenset({"client_id", "month", "channel"})  # of both tables
Entry = tuple[Reason, Mapping[str, Any]]  # where it came from (a line, an item), its values


@dataclass(frozen=True)
class ChannelRow:
    client_id: str
    month: date  # the first day
    channel: str
    transactions: int

    @property
    def key(self) -> tuple[str, date, str]:
        return (self.client_id, self.month, self.channel)


@dataclass(frozen=True)
class CostRow:
    client_id: str
    month: date
    amount_minor: int  # hundredths of the currency unit

    @property
    def key(self) -> tuple[str, date]:
        return (self.client_id, self.month)


def line(number: int) -> Reason:
    return Reason(N_("line %(number)s"), number=number)


def item(number: int) -> Reason:
    return Reason(N_("item %(number)s"), number=number)


def month_start(value: Any, where: Reason, today: date) -> date:
    """The first day of a month written `YYYY-MM` that has begun by `today`."""
    found = MONTH.fullmatch(str(value)) if isinstance(value, str) else None
    month = int(found.group(2)) if found else 0
    if found is None or not 1 <= month <= 12:
        raise InvalidInput(
            N_("%(where)s: the month must be written YYYY-MM: '%(value)s'"),
            where=where,
            value=str(value),
        )
    start = date(int(found.group(1)), month, 1)
    if start > today:
        raise InvalidInput(
            N_("%(where)s: the month %(month)s has not begun yet"),
            where=where,
            month=str(value),
        )
    return start


def _transactions(value: Any, where: Reason) -> int:
    if isinstance(value, str) and WHOLE.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TRANSACTIONS:
        raise InvalidInput(
            N_("%(where)s: transactions must be a whole number from 0 to %(max)s: '%(value)s'"),
            where=where,
            max=MAX_TRANSACTIONS,
            value=str(value),
        )
    return value


def _amount(value: Any, where: Reason) -> int:
    try:
        amount = None if isinstance(value, bool) else Decimal(str(value).strip())
    except InvalidOperation:
        amount = None
    if (
        amount is None
        or not amount.is_finite()
        or not 0 <= amount <= MAX_AMOUNT
        or amount != amount.quantize(Decimal("0.01"))
    ):
        raise InvalidInput(
            N_(
                "%(where)s: the amount must be a number from 0 with at most two decimals: "
                "'%(value)s'"
            ),
            where=where,
            value=str(value),
        )
    return int(amount * 100)


def _channel_row(where: Reason, values: Mapping[str, Any], today: date) -> ChannelRow:
    channel = values.get("channel")
    if channel not in CHANNELS:
        raise InvalidInput(
            N_("%(where)s: the channel '%(value)s' is not one of %(choices)s"),
            where=where,
            value=str(channel),
            choices=", ".join(CHANNELS),
        )
    return ChannelRow(
        str(values.get("client_id") or ""),
        month_start(values.get("month"), where, today),
        str(channel),
        _transactions(values.get("transactions"), where),
    )


def _cost_row(where: Reason, values: Mapping[str, Any], today: date) -> CostRow:
    return CostRow(
        str(values.get("client_id") or ""),
        month_start(values.get("month"), where, today),
        _amount(values.get("amount"), where),
    )


def _checked(
    db: Session,
    entries: Sequence[Entry],
    make: Callable[[Reason, Mapping[str, Any], date], Row],
    repeated: str,
    today: date | None,
) -> list[Row]:
    """Every entry made into a row, or the first problem (in order) naming where it is."""
    if not entries:
        raise InvalidInput(N_("there are no rows to write"))
    if len(entries) > MAX_ROWS:
        raise InvalidInput(N_("at most %(count)s rows at once"), count=MAX_ROWS)
    today = today or datetime.now(UTC).date()
    named = {str(values.get("client_id") or "") for _where, values in entries}
    known = set(db.scalars(select(Client.client_id).where(Client.client_id.in_(named))))
    rows: list[Row] = []
    seen: dict[Any, Reason] = {}
    for where, values in entries:
        row = make(where, values, today)
        if row.client_id not in known:
            raise InvalidInput(
                N_("%(where)s: there is no e-service '%(client_id)s'"),
                where=where,
                client_id=row.client_id,
            )
        if row.key in seen:
            raise InvalidInput(repeated, where=where, first=seen[row.key])
        seen[row.key] = where
        rows.append(row)
    return rows


def read_csv(data: bytes | str, columns: tuple[str, ...]) -> list[Entry]:
    """The rows of a CSV file whose header names exactly `columns` (in any order), each with
    its line number; blank lines are skipped."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(N_("the file is not UTF-8 text")) from None
    reader = csv.reader(io.StringIO(data.removeprefix("\ufeff"), newline=""), strict=True)
    entries: list[Entry] = []
    names: list[str] | None = None
    try:
        for row in reader:
            where = line(reader.line_num)
            if not any(cell.strip() for cell in row):
                continue
            cells = [cell.strip() for cell in row]
            if names is None:
                names = [cell.lower() for cell in cells]
                if sorted(names) != sorted(columns):
                    raise InvalidInput(
                        N_("%(where)s: the columns must be %(columns)s"),
                        where=where,
                        columns=",".join(columns),
                    )
                continue
            if len(cells) != len(names):
                raise InvalidInput(
                    N_("%(where)s: %(expected)s values expected, %(found)s found"),
                    where=where,
                    expected=len(names),
                    found=len(cells),
                )
            entries.append((where, dict(zip(names, cells, strict=True))))
            if len(entries) > MAX_ROWS:
                raise InvalidInput(N_("at most %(count)s rows at once"), count=MAX_ROWS)
    except csv.Error:
        raise InvalidInput(
            N_("%(where)s: this is not valid CSV"), where=line(reader.line_num)
        ) from None
    if names is None:
        raise InvalidInput(N_("the file is empty"))
    return entries


def _items(
    values: Sequence[Mapping[str, Any]], label: Callable[[int], Reason] = item
) -> list[Entry]:
    return [(label(number), entry) for number, entry in enumerate(values, start=1)]


def _write(
    db: Session,
    model: type[ChannelTotal] | type[ServiceCost],
    rows: Sequence[ChannelRow | CostRow],
    *,
    event: str,
    actor: str,
    via: str,
) -> int:
    """Store `rows`, each replacing what its key held, and audit it as `event`."""
    now = datetime.now(UTC)
    values = [{**asdict(row), "updated_at": now} for row in rows]
    keys = [name for name in values[0] if name in KEYS]
    statement = upsert(db, model)
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in values[0] if name not in KEYS},
    )
    db.execute(statement, values)
    events.record(
        db,
        event,
        actor=actor,
        via=via,
        rows=len(rows),
        eservices=sorted({row.client_id for row in rows})[:50],
        months=sorted({row.month.isoformat()[:7] for row in rows})[:50],
    )
    return len(rows)


def set_channel_totals(
    db: Session,
    values: Sequence[Mapping[str, Any]],
    *,
    actor: str,
    today: date | None = None,
    label: Callable[[int], Reason] = item,
) -> int:
    """Store transactions by channel, given as `{client_id, month, channel, transactions}`
    items; refuses them all (naming the item, as `label` names its number) if one is wrong.
    Returns how many."""
    rows = _checked(db, _items(values, label), _channel_row, REPEATED_CHANNEL, today)
    return _write(db, ChannelTotal, rows, event=CHANNELS_SET, actor=actor, via="list")


def import_channel_totals(
    db: Session, data: bytes | str, *, actor: str, today: date | None = None
) -> int:
    """Store the transactions by channel of a CSV file (`CHANNEL_COLUMNS`); refuses the whole
    file, naming the line, if one line is wrong. Returns how many rows."""
    entries = read_csv(data, CHANNEL_COLUMNS)
    rows = _checked(db, entries, _channel_row, REPEATED_CHANNEL, today)
    return _write(db, ChannelTotal, rows, event=CHANNELS_SET, actor=actor, via="csv")


def set_costs(
    db: Session,
    values: Sequence[Mapping[str, Any]],
    *,
    actor: str,
    today: date | None = None,
    label: Callable[[int], Reason] = item,
) -> int:
    """Store monthly costs, given as `{client_id, month, amount}` items."""
    rows = _checked(db, _items(values, label), _cost_row, REPEATED_COST, today)
    return _write(db, ServiceCost, rows, event=COSTS_SET, actor=actor, via="list")


def import_costs(db: Session, data: bytes | str, *, actor: str, today: date | None = None) -> int:
    """Store the monthly costs of a CSV file (`COST_COLUMNS`), all or nothing."""
    rows = _checked(db, read_csv(data, COST_COLUMNS), _cost_row, REPEATED_COST, today)
    return _write(db, ServiceCost, rows, event=COSTS_SET, actor=actor, via="csv")


CHANNELS_SET = "admin.channel_totals_set"
COSTS_SET = "admin.costs_set"
REPEATED_CHANNEL = N_("%(where)s: the same e-service, month and channel as %(first)s")
REPEATED_COST = N_("%(where)s: the same e-service and month as %(first)s")


@dataclass(frozen=True)
class MonthFilter:
    client_id: str | None = None
    since: date | None = None  # first month
    until: date | None = None  # last month


def _months(query: Any, model: type[ChannelTotal] | type[ServiceCost], chosen: MonthFilter) -> Any:
    if chosen.client_id:
        query = query.where(model.client_id == chosen.client_id)
    if chosen.since:
        query = query.where(model.month >= chosen.since)
    if chosen.until:
        query = query.where(model.month <= chosen.until)
    return query


def channel_totals(db: Session, chosen: MonthFilter) -> list[dict[str, Any]]:
    """The stored transactions by channel, by e-service, month and channel."""
    order = (ChannelTotal.client_id, ChannelTotal.month, ChannelTotal.channel)
    query = _months(select(ChannelTotal).order_by(*order), ChannelTotal, chosen)
    return [
        {
            "client_id": row.client_id,
            "month": row.month.isoformat()[:7],
            "channel": row.channel,
            "transactions": row.transactions,
        }
        for row in db.scalars(query)
    ]


def costs(db: Session, chosen: MonthFilter, *, currency: str) -> list[dict[str, Any]]:
    """The stored monthly costs, by e-service and month."""
    order = (ServiceCost.client_id, ServiceCost.month)
    query = _months(select(ServiceCost).order_by(*order), ServiceCost, chosen)
    return [
        {
            "client_id": row.client_id,
            "month": row.month.isoformat()[:7],
            "amount": row.amount_minor / 100,
            "currency": currency,
        }
        for row in db.scalars(query)
    ]
