"""The edit page of an e-service: the register wizard's fields, filled in with what it has.

What the administrator changed (the fields that differ from those the form showed, which it
carries along) becomes `ClientChanges`, checked by the rules of registration before any
transaction (`check_client`, which fetches a changed sector document), then applied to the
e-service as it is then (`update_client`): what someone else changed meanwhile in another
field stays. A change that gives citizens other identifiers at the e-service (public and
pairwise, another sector) must be confirmed on the form. The e-service's page then shows what
changed, read from the audit entry the change wrote."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from idp.admin import client_form
from idp.admin.clients import UNCHANGED, UPDATED, detail_path
from idp.admin.pages import Call, admin_view, done, form_checked, form_field, reason, refused, show
from idp.db.models import Client
from idp.i18n import N_
from idp.json_input import JsonInputError, parse_json
from idp.runtime import Runtime
from idp.services import InvalidInput, NotFound, ServiceError
from idp.services import clients as client_service

ORIGINAL = "original"  # the hidden field: the form's fields as first shown (JSON)
MAX_ORIGINAL = 65536
CONFIRM_SUBJECTS = "confirm_subjects"
SUBJECTS_UNCONFIRMED = N_("Confirm that citizens' identifiers at this e-service will change")


def _page(
    call: Call,
    client: Client,
    values: client_form.Values,
    original: str,
    errors: list[tuple[str, str]],
    *,
    status: int = 200,
    ask_subjects: bool = False,
) -> Response:
    return show(
        call,
        "admin/client_edit.html",
        {
            "title": N_("Change the e-service"),
            "name": client.name,
            "client_id": client.client_id,
            "values": values,
            "original": original,
            "errors": errors,
            "choices": client_form.CHOICES,
            "ask_subjects": ask_subjects,
        },
        status_code=status,
    )


def _form(call: Call) -> Response:
    client = client_service.get_client(call.db, str(call.request.path_params["client_id"]))
    values = client_form.stored(client_service.describe(client))
    return _page(call, client, values, json.dumps(values), [])


def _original(form: FormData | None) -> client_form.Values | None:
    """The fields as the form first showed them (None if they are not readable)."""
    try:
        value = parse_json(form_field(form, ORIGINAL, MAX_ORIGINAL), max_size=MAX_ORIGINAL)
    except JsonInputError:
        return None
    return client_form.restored(value)


async def _check(
    form: FormData | None, runtime: Runtime, path: Mapping[str, str]
) -> client_service.CheckedClient | None:
    """The administrator's changes checked against the e-service as stored (read in a
    transaction of its own), the sector document fetched if needed; None when the form
    changes nothing."""

    def stored() -> Client:
        with runtime.db.read() as db:
            return client_service.get_client(db, path["client_id"])

    current = await run_in_threadpool(stored)
    before = _original(form) or client_form.stored(client_service.describe(current))
    changes = client_form.changes(before, client_form.submitted(form))
    if not changes.values:
        return None
    checked = await client_service.check_client(changes, runtime.settings, current=current)
    if client_service.subjects_change(current, checked) and not form_checked(
        form, CONFIRM_SUBJECTS
    ):
        raise InvalidInput(SUBJECTS_UNCONFIRMED)
    return checked


def _update(call: Call) -> Response:
    client_id = str(call.request.path_params["client_id"])
    if call.prepared is None:
        client_service.get_client(call.db, client_id)  # one that exists
        return done(detail_path(client_id), UNCHANGED)
    updated = client_service.update_client(
        call.db, client_id, call.prepared, actor=call.admin.actor
    )
    return done(detail_path(client_id), UPDATED if updated.changes else UNCHANGED)


def _refused(call: Call, error: ServiceError) -> Response:
    """The form again, as it was sent, with the reason; nothing was written."""
    if isinstance(error, NotFound):
        return refused(call, error)
    client = client_service.get_client(call.db, str(call.request.path_params["client_id"]))
    values = client_form.submitted(call.form)
    original = form_field(call.form, ORIGINAL, MAX_ORIGINAL) or json.dumps(
        client_form.stored(client_service.describe(client))
    )
    unconfirmed = error.message == SUBJECTS_UNCONFIRMED
    field = CONFIRM_SUBJECTS if unconfirmed else client_form.field_of(error, values)
    return _page(
        call,
        client,
        values,
        original,
        [(field, reason(call, error))],
        status=400,
        ask_subjects=unconfirmed or form_checked(call.form, CONFIRM_SUBJECTS),
    )


edit_page = admin_view(_form, fresh=True)  # its POST will need it: ask first
edit_submit = admin_view(_update, prepare=_check, on_error=_refused)
