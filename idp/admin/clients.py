"""Admin pages for e-services: list and search, register (the wizard), view, rotate the
secret, disable and enable (the edit page: `idp.admin.client_edit`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from idp.admin import client_form
from idp.admin.client_fields import FIELDS, SUBJECT_TYPES
from idp.admin.event_details import Detail, reader
from idp.admin.pages import (
    PAGE_SIZE,
    Call,
    Subject,
    admin_view,
    confirmation,
    current_page,
    done,
    pagination,
    reason,
    show,
)
from idp.db.models import Event
from idp.i18n import N_
from idp.runtime import Runtime
from idp.services import ServiceError
from idp.services import clients as client_service

NOTICES = {
    "disabled": N_("The e-service is disabled. Its tokens no longer work."),
    "enabled": N_("The e-service is enabled again."),
}
UPDATED = "updated"  # the done-code of a change: the page shows it from its audit entry
UNCHANGED = "unchanged"


def detail_path(client_id: str) -> str:
    return f"/admin/clients/{client_id}"


def _client_id(call: Call) -> str:
    return str(call.request.path_params["client_id"])


def _back_to_detail(request: Request) -> str:
    return detail_path(str(request.path_params["client_id"]))


# List ---------------------------------------------------------------------------------------


def _list(call: Call) -> Response:
    query = call.query("q")
    number = current_page(call.request)
    rows, total = client_service.search_clients(
        call.db, query, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    return show(
        call,
        "admin/clients.html",
        {
            "title": N_("E-services"),
            "query": query,
            "clients": [client_service.describe(c) for c in rows],
            "pagination": pagination(call.request, total, number),
        },
    )


clients_page = admin_view(_list)


# Register -------------------------------------------------------------------------------------


def _wizard(
    call: Call, values: client_form.Values, errors: list[tuple[str, str]], status: int
) -> Response:
    return show(
        call,
        "admin/client_new.html",
        {
            "title": N_("Register an e-service"),
            "values": values,
            "errors": errors,
            "choices": client_form.CHOICES,
        },
        status_code=status,
    )


def _register_form(call: Call) -> Response:
    return _wizard(call, client_form.blank(), [], 200)


async def _check(
    form: FormData | None, runtime: Runtime, path: Mapping[str, str]
) -> client_service.CheckedClient:
    """The wizard's e-service checked, its sector identifier URI fetched (no transaction)."""
    new = client_form.new_client(client_form.submitted(form))
    return await client_service.check_client(new, runtime.settings)


def _register(call: Call) -> Response:
    registered = client_service.register_client(call.db, call.prepared, actor=call.admin.actor)
    return _secret_page(call, registered, N_("The e-service is registered"))


def _register_refused(call: Call, error: ServiceError) -> Response:
    values = client_form.submitted(call.form)
    return _wizard(call, values, [(client_form.field_of(error, values), reason(call, error))], 400)


def _secret_page(call: Call, registered: client_service.Registered, title: str) -> Response:
    """The client secret, shown this once (the answer to the POST itself, never cached: the
    secret is not stored anywhere it could be shown again)."""
    return show(
        call,
        "admin/client_secret.html",
        {
            "title": title,
            "client": client_service.describe(registered.client),
            "secret": registered.client_secret,
        },
    )


register_page = admin_view(_register_form, fresh=True)  # its POST will need it: ask first
register_submit = admin_view(
    _register,
    back=lambda request: "/admin/clients/new",
    prepare=_check,
    on_error=_register_refused,
)


# One e-service ----------------------------------------------------------------------------------


CHANGE_EVENTS = ("admin.client_updated", "admin.client_indicator_settings")


def _last_change(call: Call, client_id: str) -> list[Event]:
    """This administrator's latest change of the e-service, as the audit log records it: the
    change of its metadata, of its indicator settings, or both (the edit page writes them one
    after the other)."""
    found = list(
        call.db.scalars(
            select(Event)
            .where(
                Event.type.in_(CHANGE_EVENTS),
                Event.client_id == client_id,
                Event.actor == call.admin.actor,
            )
            .order_by(Event.id.desc())
            .limit(2)
        )
    )
    if len(found) == 2 and (found[0].type == found[1].type or found[0].id - found[1].id > 3):
        found = found[:1]
    return found[::-1]


def _detail(call: Call) -> Response:
    client = client_service.get_client(call.db, _client_id(call))
    code = call.query("done")
    change: list[Detail] | None = None  # what the administrator just changed
    if code == UNCHANGED:
        change = []
    elif code == UPDATED:
        read = reader(call.request)
        written = _last_change(call, client.client_id)
        change = [d for e in written for d in read.details(e.data)] if written else None
    return show(
        call,
        "admin/client.html",
        {
            "title": N_("E-service"),
            "client": client_service.describe(client),
            "created_at": client.created_at,
            "labels": FIELDS,
            "subject_labels": SUBJECT_TYPES,
            "notice": NOTICES.get(code),
            "change": change,
            "secret_based": client.token_endpoint_auth_method in client_service.SECRET_METHODS,
        },
    )


def _subject(call: Call) -> Subject:
    client = client_service.get_client(call.db, _client_id(call))
    return Subject(client.name, detail_path(client.client_id), {"name": client.name})


def _rotate(call: Call) -> Response:
    registered = client_service.rotate_secret(call.db, _client_id(call), actor=call.admin.actor)
    return _secret_page(call, registered, N_("New client secret"))


def _set_disabled(disabled: bool) -> Callable[[Call], Response]:
    def action(call: Call) -> Response:
        client_id = _client_id(call)
        client_service.set_disabled(call.db, client_id, disabled, actor=call.admin.actor)
        return done(detail_path(client_id), "disabled" if disabled else "enabled")

    return action


client_page = admin_view(_detail)
# An action that cannot be undone is confirmed first, on a page at its own address (GET).
confirm_rotate_secret = confirmation(
    N_("Issue a new client secret?"),
    N_(
        "The current secret stops working at once: %(name)s cannot get tokens until it uses"
        " the new one, which is shown once on the next page."
    ),
    N_("Issue a new secret"),
    _subject,
)
rotate_secret = admin_view(_rotate)
confirm_disable_client = confirmation(
    N_("Disable the e-service?"),
    N_(
        "Citizens can no longer sign in to %(name)s, and every token it holds stops working"
        " at once. Enabling it again later does not bring the tokens back."
    ),
    N_("Disable the e-service"),
    _subject,
)
disable_client = admin_view(_set_disabled(True))
enable_client = admin_view(_set_disabled(False), back=_back_to_detail)
