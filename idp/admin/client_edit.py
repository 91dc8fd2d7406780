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
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

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
PUBLIC_STATS = "public_stats"
SAMPLING = "feedback_sampling_rate"  # in per cent on the form, a share (0-1) in the service
SAMPLING_WRONG = N_("The sampling rate must be a number from 0 to 100, for example 5 or 2.5")


@dataclass(frozen=True)
class Edit:
    """What the form changes: the metadata (checked; None: none) and the indicator settings."""

    checked: client_service.CheckedClient | None
    flags: dict[str, Any] = field(default_factory=dict)


def flags_of(shown: Mapping[str, Any]) -> dict[str, Any]:
    """The indicator settings of an e-service (`clients.describe`) as the form shows them."""
    return {
        PUBLIC_STATS: bool(shown["public_stats"]),
        SAMPLING: f"{float(shown['feedback_sampling_rate']) * 100:g}",
    }


def flags_submitted(form: FormData | None) -> dict[str, Any]:
    return {
        PUBLIC_STATS: form_checked(form, PUBLIC_STATS),
        SAMPLING: form_field(form, SAMPLING, 20),
    }


def _flag_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the administrator changed, as `set_indicator_settings` takes them."""
    changed: dict[str, Any] = {}
    if after[PUBLIC_STATS] != before.get(PUBLIC_STATS):
        changed[PUBLIC_STATS] = after[PUBLIC_STATS]
    if after[SAMPLING] and after[SAMPLING] != before.get(SAMPLING):  # left empty: kept
        try:
            percent = Decimal(after[SAMPLING].replace(",", ".").removesuffix("%").strip())
        except InvalidOperation:
            raise InvalidInput(SAMPLING_WRONG) from None
        if not percent.is_finite() or not 0 <= percent <= 100:
            raise InvalidInput(SAMPLING_WRONG)
        changed[SAMPLING] = float(percent) / 100
    return changed


def _page(
    call: Call,
    client: Client,
    values: client_form.Values,
    flags: Mapping[str, Any],
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
            "flags": flags,
            "original": original,
            "errors": errors,
            "choices": client_form.CHOICES,
            "ask_subjects": ask_subjects,
        },
        status_code=status,
    )


def _shown(client: Client) -> tuple[client_form.Values, dict[str, Any], str]:
    """The form's fields, the indicator settings, and both as the hidden field carries them."""
    shown = client_service.describe(client)
    values, flags = client_form.stored(shown), flags_of(shown)
    return values, flags, json.dumps({**values, **flags})


def _form(call: Call) -> Response:
    client = client_service.get_client(call.db, str(call.request.path_params["client_id"]))
    values, flags, original = _shown(client)
    return _page(call, client, values, flags, original, [])


def _original(form: FormData | None) -> tuple[client_form.Values | None, dict[str, Any]]:
    """The fields as the form first showed them (None if they are not readable), and the
    indicator settings it showed."""
    try:
        value = parse_json(form_field(form, ORIGINAL, MAX_ORIGINAL), max_size=MAX_ORIGINAL)
    except JsonInputError:
        return None, {}
    flags = (
        {name: value.get(name) for name in (PUBLIC_STATS, SAMPLING)}
        if isinstance(value, dict)
        else {}
    )
    return client_form.restored(value), flags


async def _check(form: FormData | None, runtime: Runtime, path: Mapping[str, str]) -> Edit:
    """The administrator's changes checked against the e-service as stored (read in a
    transaction of its own), the sector document fetched if needed."""

    def stored() -> Client:
        with runtime.db.read() as db:
            return client_service.get_client(db, path["client_id"])

    current = await run_in_threadpool(stored)
    shown = client_service.describe(current)
    before, shown_flags = _original(form)
    flags = _flag_changes(shown_flags or flags_of(shown), flags_submitted(form))
    changes = client_form.changes(before or client_form.stored(shown), client_form.submitted(form))
    if not changes.values:
        return Edit(None, flags)
    checked = await client_service.check_client(changes, runtime.settings, current=current)
    if client_service.subjects_change(current, checked) and not form_checked(
        form, CONFIRM_SUBJECTS
    ):
        raise InvalidInput(SUBJECTS_UNCONFIRMED)
    return Edit(checked, flags)


def _update(call: Call) -> Response:
    client_id = str(call.request.path_params["client_id"])
    edit: Edit = call.prepared
    client = client_service.get_client(call.db, client_id)  # one that exists
    before = flags_of(client_service.describe(client))
    if edit.flags:
        client_service.set_indicator_settings(
            call.db,
            client_id,
            public_stats=edit.flags.get(PUBLIC_STATS),
            feedback_sampling_rate=edit.flags.get(SAMPLING),
            actor=call.admin.actor,
        )
    flagged = flags_of(client_service.describe(client)) != before
    updated = False
    if edit.checked is not None:
        changed = client_service.update_client(
            call.db, client_id, edit.checked, actor=call.admin.actor
        )
        updated = bool(changed.changes)
    return done(detail_path(client_id), UPDATED if updated or flagged else UNCHANGED)


def _refused(call: Call, error: ServiceError) -> Response:
    """The form again, as it was sent, with the reason; nothing was written."""
    if isinstance(error, NotFound):
        return refused(call, error)
    client = client_service.get_client(call.db, str(call.request.path_params["client_id"]))
    values = client_form.submitted(call.form)
    original = form_field(call.form, ORIGINAL, MAX_ORIGINAL) or _shown(client)[2]
    unconfirmed = error.message == SUBJECTS_UNCONFIRMED
    if unconfirmed:
        field_id = CONFIRM_SUBJECTS
    elif error.message == SAMPLING_WRONG:
        field_id = SAMPLING
    else:
        field_id = client_form.field_of(error, values)
    return _page(
        call,
        client,
        values,
        flags_submitted(call.form),
        original,
        [(field_id, reason(call, error))],
        status=400,
        ask_subjects=unconfirmed or form_checked(call.form, CONFIRM_SUBJECTS),
    )


edit_page = admin_view(_form, fresh=True)  # its POST will need it: ask first
edit_submit = admin_view(_update, prepare=_check, on_error=_refused)
