"""Admin page for the audit log: a filterable view, each entry's data as readable fields, and
the chain's verification."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from idp.admin.event_details import reader
from idp.admin.pages import (
    PAGE_SIZE,
    Call,
    admin_view,
    current_page,
    pagination,
    reason,
    show,
    translator,
)
from idp.db.models import Event, User
from idp.i18n import N_
from idp.services import InvalidInput, NotFound
from idp.services import audit as audit_service
from idp.services import users as user_service

OUTCOMES = {"success": N_("Succeeded"), "failure": N_("Failed")}
TEXT_FILTERS = ("type", "actor", "user", "client_id", "outcome")
# The two dates of the filter (GOV.UK date inputs: `since-day`, `since-month`, `since-year`).
DATES = {
    "since": N_("The start date must be a real date"),
    "until": N_("The end date must be a real date"),
}
Errors = list[tuple[str, str]]


def _day(call: Call, name: str) -> tuple[dict[str, str], str, str | None]:
    """One date of the filter: its three fields as typed, the date as `YYYY-MM-DD` (or as
    given in the one parameter `name`, as the address of another page may give it) and the
    message when it is not a real date."""
    parts = {part: call.query(f"{name}-{part}", 4) for part in ("day", "month", "year")}
    if not any(parts.values()):
        given = call.query(name, 32)
        try:
            day = date.fromisoformat(given)
        except ValueError:
            return parts, given, None  # the service says what is wrong with it
        return {"day": str(day.day), "month": str(day.month), "year": str(day.year)}, given, None
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        return parts, "", DATES[name]
    if day.year < 1000:
        return parts, "", DATES[name]
    return parts, day.isoformat(), None


def filters(call: Call) -> tuple[audit_service.Filters, dict[str, Any], Errors]:
    """The filters of the query string, what the form shows of them, and what is wrong with
    them (each with the field it is about)."""
    values: dict[str, Any] = {name: call.query(name) for name in TEXT_FILTERS}
    errors: Errors = []
    instants: dict[str, datetime | None] = {}
    for name in DATES:
        values[name], day, problem = _day(call, name)
        instants[name] = None
        if problem is not None:
            errors.append((f"{name}-day", translator(call.request)(problem)))
            continue
        try:
            instants[name] = audit_service.parse_instant(day, end_of_day=name == "until")
        except InvalidInput as error:
            errors.append((f"{name}-day", reason(call, error)))
    user_id = None
    if values["user"]:
        try:
            user_id = user_service.get_user(call.db, values["user"]).id
        except NotFound:
            user_id = -1  # nobody: no entries
    chosen = audit_service.Filters(
        type=values["type"] or None,
        actor=values["actor"] or None,
        user_id=user_id,
        client_id=values["client_id"] or None,
        outcome=values["outcome"] or None,
        since=instants["since"],
        until=instants["until"],
    )
    return chosen, values, errors


def _usernames(call: Call, rows: list[Event]) -> dict[int, str]:
    ids = {e.user_id for e in rows if e.user_id is not None}
    if not ids:
        return {}
    found = call.db.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {user_id: username for user_id, username in found}


def _entries(call: Call, rows: list[Event]) -> list[dict[str, Any]]:
    """The entries as the page shows them: who and what, and their data as fields."""
    usernames = _usernames(call, rows)
    read = reader(call.request)
    return [
        {
            "seq": e.seq,
            "at": e.at,
            "type": e.type,
            "outcome": e.outcome,
            "actor": e.actor,
            "user_id": e.user_id,
            "username": usernames.get(e.user_id) if e.user_id is not None else None,
            "client_id": e.client_id,
            "ip": e.ip,
            "details": read.details(e.data or {}),
        }
        for e in rows
    ]


def _view(call: Call) -> Response:
    number = current_page(call.request)
    rows: list[Event] = []
    total = 0
    chosen, values, errors = filters(call)
    if not errors:
        try:
            rows, total = audit_service.search(
                call.db, chosen, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
            )
        except InvalidInput as error:  # an event type it cannot be
            errors.append(("type", reason(call, error)))
    return show(
        call,
        "admin/audit.html",
        {
            "title": N_("Audit log"),
            "entries": _entries(call, rows),
            "values": values,
            "outcomes": OUTCOMES,
            "errors": errors,
            "pagination": pagination(call.request, total, number),
        },
        status_code=400 if errors else 200,
    )


def _verify(call: Call) -> Response:
    found = audit_service.verify(call.db)
    return show(
        call,
        "admin/audit_verify.html",
        {"title": N_("Audit chain"), "result": found.as_dict()},
    )


audit_page = admin_view(_view)
verify_page = admin_view(_verify)
