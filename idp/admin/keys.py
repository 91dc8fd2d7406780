"""Admin page for signing keys: list, rotate, retire."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin.pages import Call, admin_view, done, show
from idp.i18n import N_
from idp.oauth.keys import SUPPORTED_ALGS
from idp.services import keys as key_service

HOME = "/admin/keys"
NOTICES = {
    "rotated": N_("A new key is published. It signs once the activation delay has passed."),
    "retired": N_("The key no longer signs. It stays published until its tokens expire."),
}


def _list(call: Call) -> Response:
    states = key_service.list_keys(call.runtime.keyring)
    return show(
        call,
        "admin/keys.html",
        {
            "title": N_("Signing keys"),
            "keys": [key_service.describe(s) for s in states],
            "algs": SUPPORTED_ALGS,
            "notice": NOTICES.get(call.query("done")),
        },
    )


def _rotate(call: Call) -> Response:
    key_service.rotate_key(
        call.db,
        call.runtime.keyring,
        call.runtime.settings,
        call.field("alg", 16),
        actor=call.admin.actor,
        immediately=call.checked("immediately"),
    )
    return done(HOME, "rotated")


def _retire(call: Call) -> Response:
    key_service.retire_key(
        call.db,
        call.runtime.keyring,
        str(call.request.path_params["kid"])[:200],
        actor=call.admin.actor,
        unpublish=call.checked("unpublish"),
    )
    return done(HOME, "retired")


keys_page = admin_view(_list)
rotate_key = admin_view(_rotate, back=lambda request: HOME)
retire_key = admin_view(_retire, back=lambda request: HOME)
