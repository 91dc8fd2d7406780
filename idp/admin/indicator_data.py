"""Admin pages for what the indicators are computed from and what citizens said: the
e-services' transactions by channel and their costs, month by month (a filtered list, a form
for one row, a CSV import that writes every line or none), and the citizens' comments.

The pages read and write through `idp.services.transactions` and `idp.services.feedback`, as
the admin API and the command line do. An import names the first wrong line of its file in the
error summary and writes nothing; the page then says how many rows were written."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from idp.admin.pages import (
    PAGE_SIZE,
    Call,
    admin_view,
    current_page,
    done,
    pagination,
    reason,
    show,
    translator,
)
from idp.db.models import Client
from idp.i18n import N_, N_n
from idp.reasons import Reason
from idp.runtime import Runtime
from idp.services import InvalidInput, ServiceError
from idp.services import feedback as feedback_service
from idp.services import transactions as transaction_service

DASHBOARD = "/admin/indicators"
TRANSACTIONS = "/admin/indicators/transactions"
COSTS = "/admin/indicators/costs"
COMMENTS = "/admin/indicators/comments"
MAX_CSV = 4 * 1024 * 1024  # characters of a pasted or uploaded file (the body limit applies)
ENTRY = Reason(N_("the row entered"))  # where a refusal of the form's one row is
FIRST_MONTH = Reason(N_("the first month"))
LAST_MONTH = Reason(N_("the last month"))
CHANNEL_NAMES = {
    "online": N_("Online"),
    "in_person": N_("In person"),
    "phone": N_("By phone"),
    "post": N_("By post"),
    "other": N_("Other"),
}
SOURCES = {
    feedback_service.SIGNIN: N_("Asked after signing in"),
    feedback_service.ESERVICE: N_("The e-service's own rating"),
}
NOTICES = {"saved": N_("The row is saved.")}
IMPORTED = N_n(
    "%(count)s row of the file is saved.", "%(count)s rows of the file are saved.", "count"
)
Errors = list[tuple[str, str]]
# Which field of the entry form a refusal is about, by its message.
_FIELDS = {
    "%(where)s: there is no e-service '%(client_id)s'": "client_id",
    "%(where)s: the month must be written YYYY-MM: '%(value)s'": "month",
    "%(where)s: the month %(month)s has not begun yet": "month",
    "%(where)s: the channel '%(value)s' is not one of %(choices)s": "channel",
    "%(where)s: transactions must be a whole number from 0 to %(max)s: '%(value)s'": (
        "transactions"
    ),
    "%(where)s: the amount must be a number from 0 with at most two decimals: '%(value)s'": (
        "amount"
    ),
}


@dataclass(frozen=True)
class Kind:
    """One of the two pages of monthly figures: transactions by channel, or costs."""

    path: str
    title: str
    template: str
    fields: tuple[str, ...]  # of the entry form, as the service names them
    columns: tuple[str, ...]  # of the CSV file
    listed: Callable[[Session, transaction_service.MonthFilter, Runtime], list[dict[str, Any]]]
    store: Callable[..., int]  # one row, as the service's `set_*` takes a list of them
    load: Callable[..., int]  # a CSV file, as the service's `import_*` takes it


CHANNEL_TOTALS = Kind(
    TRANSACTIONS,
    N_("Transactions by channel"),
    "admin/indicator_figures.html",
    ("client_id", "month", "channel", "transactions"),
    transaction_service.CHANNEL_COLUMNS,
    lambda db, chosen, runtime: transaction_service.channel_totals(db, chosen),
    transaction_service.set_channel_totals,
    transaction_service.import_channel_totals,
)
COST_TOTALS = Kind(
    COSTS,
    N_("Costs"),
    "admin/indicator_figures.html",
    ("client_id", "month", "amount"),
    transaction_service.COST_COLUMNS,
    lambda db, chosen, runtime: transaction_service.costs(
        db, chosen, currency=runtime.settings.stats_currency
    ),
    transaction_service.set_costs,
    transaction_service.import_costs,
)


def eservices(db: Session) -> list[tuple[str, str]]:
    """Every e-service, `(client_id, name)`, by name: the choices of the filters and forms."""
    found = db.execute(select(Client.client_id, Client.name).order_by(Client.name))
    return [(client_id, name) for client_id, name in found]


def _month_filter(call: Call) -> tuple[transaction_service.MonthFilter, dict[str, str], Errors]:
    values = {name: call.query(name, 20) for name in ("since", "until")}
    values["client_id"] = call.query("client_id", 128)
    errors: Errors = []
    months: dict[str, date | None] = {"since": None, "until": None}
    today = datetime.now(UTC).date()
    for name, where in (("since", FIRST_MONTH), ("until", LAST_MONTH)):
        if values[name]:
            try:
                months[name] = transaction_service.month_start(values[name], where, today)
            except InvalidInput as error:
                errors.append((name, reason(call, error)))
    chosen = transaction_service.MonthFilter(
        client_id=values["client_id"] or None, since=months["since"], until=months["until"]
    )
    return chosen, values, errors


def _rows_notice(call: Call) -> str | None:
    """The done-message of the page, in its language (an import says how many rows)."""
    code = call.query("done")
    if code == "imported":
        rows = call.query("rows", 8)
        count = int(rows) if rows.isdigit() else 0
        return translator(call.request)(IMPORTED, count=count)
    return NOTICES.get(code)


def _figures_page(
    kind: Kind,
    call: Call,
    *,
    entry: Mapping[str, str] | None = None,
    pasted: str = "",
    errors: Errors | None = None,
    status: int = 200,
) -> Response:
    chosen, filters, wrong = _month_filter(call)
    rows: list[dict[str, Any]] = []
    if not wrong:
        rows = kind.listed(call.db, chosen, call.runtime)
    rows.sort(key=lambda row: row["client_id"])
    rows.sort(key=lambda row: row["month"], reverse=True)  # the newest month first
    number = current_page(call.request)
    shown = rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    services = eservices(call.db)
    all_errors = (errors or []) + wrong
    return show(
        call,
        kind.template,
        {
            "title": kind.title,
            "here": kind.path,
            "rows": shown,
            "names": dict(services),
            "eservices": services,
            "filters": filters,
            "entry": {name: (entry or {}).get(name, "") for name in kind.fields},
            "pasted": pasted,
            "columns": ",".join(kind.columns),
            "channels": CHANNEL_NAMES,
            "currency": call.runtime.settings.stats_currency,
            "errors": all_errors,
            "notice": None if all_errors else _rows_notice(call),
            "pagination": pagination(call.request, len(rows), number),
        },
        status_code=400 if all_errors else status,
    )


def _entered(kind: Kind, form: FormData | None) -> dict[str, str]:
    def value(name: str) -> str:
        found = form.get(name) if form is not None else None
        return found[:200].strip() if isinstance(found, str) else ""

    return {name: value(name) for name in kind.fields}


def _entry_field(error: ServiceError) -> str:
    message = error.message if isinstance(error.message, str) else error.message.singular
    return _FIELDS.get(message, "")


def _list_view(kind: Kind) -> Callable[[Call], Response]:
    def view(call: Call) -> Response:
        return _figures_page(kind, call)

    return view


def _enter(kind: Kind) -> Callable[[Call], Response]:
    def view(call: Call) -> Response:
        entry = _entered(kind, call.form)
        written = kind.store(call.db, [entry], actor=call.admin.actor, label=lambda number: ENTRY)
        assert written == 1
        return done(kind.path, "saved")

    return view


def _enter_refused(kind: Kind) -> Callable[[Call, ServiceError], Response]:
    def page(call: Call, error: ServiceError) -> Response:
        errors = [(_entry_field(error), reason(call, error))]
        return _figures_page(kind, call, entry=_entered(kind, call.form), errors=errors)

    return page


async def _read_file(form: FormData | None, runtime: Runtime, path: Mapping[str, str]) -> str:
    """The CSV the administrator chose (a file) or pasted (text), before any transaction."""
    upload = form.get("file") if form is not None else None
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_CSV + 1)
        if len(data) > MAX_CSV:
            raise InvalidInput(N_("the file is too large"))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(N_("the file is not UTF-8 text")) from None
    pasted = form.get("pasted") if form is not None else None
    text = pasted[:MAX_CSV] if isinstance(pasted, str) else ""
    if not text.strip():
        raise InvalidInput(N_("Choose a CSV file, or paste its lines"))
    return text


def _pasted(form: FormData | None) -> str:
    pasted = form.get("pasted") if form is not None else None
    return pasted[:MAX_CSV] if isinstance(pasted, str) else ""


def _import(kind: Kind) -> Callable[[Call], Response]:
    def view(call: Call) -> Response:
        written = kind.load(call.db, call.prepared, actor=call.admin.actor)
        return done(f"{kind.path}?{urlencode({'rows': written})}", "imported")

    return view


def _import_refused(kind: Kind) -> Callable[[Call, ServiceError], Response]:
    def page(call: Call, error: ServiceError) -> Response:
        return _figures_page(
            kind, call, pasted=_pasted(call.form), errors=[("file", reason(call, error))]
        )

    return page


def _pages(kind: Kind) -> tuple[Any, Any, Any]:
    """The list (GET), the one row's form (POST) and the import (POST) of `kind`'s page."""

    def back(request: Any) -> str:
        return kind.path

    return (
        admin_view(_list_view(kind)),
        admin_view(_enter(kind), back=back, on_error=_enter_refused(kind)),
        admin_view(_import(kind), back=back, prepare=_read_file, on_error=_import_refused(kind)),
    )


transactions_page, transactions_enter, transactions_import = _pages(CHANNEL_TOTALS)
costs_page, costs_enter, costs_import = _pages(COST_TOTALS)


# Citizens' comments -------------------------------------------------------------------------


def _day(call: Call, name: str, errors: Errors) -> date | None:
    typed = call.query(name, 20)
    if not typed:
        return None
    try:
        return date.fromisoformat(typed)
    except ValueError:
        message = N_("Write the date as YYYY-MM-DD, for example 2026-03-27")
        errors.append((name, translator(call.request)(message)))
        return None


def _comments(call: Call) -> Response:
    errors: Errors = []
    filters = {name: call.query(name, 128) for name in ("client_id", "since", "until")}
    chosen = feedback_service.CommentFilter(
        client_id=filters["client_id"] or None,
        since=_day(call, "since", errors),
        until=_day(call, "until", errors),
    )
    number = current_page(call.request)
    found: Sequence[Any] = []
    total = 0
    if not errors:
        found, total = feedback_service.comments(
            call.db, chosen, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
    services = eservices(call.db)
    return show(
        call,
        "admin/indicator_comments.html",
        {
            "title": N_("Citizens' comments"),
            "here": COMMENTS,
            "comments": [
                {**feedback_service.describe_comment(rating), "created": rating.created_at}
                for rating in found
            ],
            "names": dict(services),
            "eservices": services,
            "filters": filters,
            "sources": SOURCES,
            "retention_days": call.runtime.settings.feedback_comment_retention_days,
            "errors": errors,
            "pagination": pagination(call.request, total, number),
        },
        status_code=400 if errors else 200,
    )


comments_page = admin_view(_comments)
