"""Admin page for the audit log: a filterable view, and the chain's verification."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin.pages import PAGE_SIZE, Call, admin_view, current_page, pagination, reason, show
from idp.i18n import N_
from idp.services import InvalidInput, NotFound
from idp.services import audit as audit_service
from idp.services import users as user_service

OUTCOMES = ("success", "failure")


def filters(call: Call) -> tuple[audit_service.Filters, dict[str, str]]:
    """The filters of the query string (raises InvalidInput on a bad date or type)."""
    values = {
        name: call.query(name)
        for name in ("type", "actor", "user", "client_id", "outcome", "since", "until")
    }
    user_id = None
    if values["user"]:
        try:
            user_id = user_service.get_user(call.db, values["user"]).id
        except NotFound:
            user_id = -1  # nobody: no entries
    return (
        audit_service.Filters(
            type=values["type"] or None,
            actor=values["actor"] or None,
            user_id=user_id,
            client_id=values["client_id"] or None,
            outcome=values["outcome"] or None,
            since=audit_service.parse_instant(values["since"]),
            until=audit_service.parse_instant(values["until"], end_of_day=True),
        ),
        values,
    )


def _view(call: Call) -> Response:
    number = current_page(call.request)
    try:
        chosen, values = filters(call)
        rows, total = audit_service.search(
            call.db, chosen, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        problem = None
    except InvalidInput as error:
        values = {name: call.query(name) for name in ("type", "actor", "user", "client_id")}
        values.update(outcome="", since="", until="")
        rows, total, problem = [], 0, reason(call, error)
    return show(
        call,
        "admin/audit.html",
        {
            "title": N_("Audit log"),
            "entries": [audit_service.describe(e) for e in rows],
            "values": values,
            "outcomes": OUTCOMES,
            "problem": problem,
            "pagination": pagination(call.request, total, number),
        },
        status_code=400 if problem else 200,
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
