"""Admin page for signing keys: list, rotate (after the activation delay, or at once for a
compromised key), retire."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from idp.admin.pages import Call, Subject, admin_view, confirmation, done, show
from idp.i18n import N_
from idp.oauth.keys import SUPPORTED_ALGS, KeyState
from idp.services import InvalidInput, NotFound
from idp.services import keys as key_service

HOME = "/admin/keys"
NOTICES = {
    "rotated": N_("A new key is published. It signs once the activation delay has passed."),
    "rotated_now": N_("A new key is published and signs from now on."),
    "retired": N_("The key no longer signs. It stays published until its tokens expire."),
}
# Where a key stands (`KeyState.status`), as a tag: its words and colour.
STATUSES = {
    "next": (N_("Next"), "blue"),
    "active": (N_("Active"), "green"),
    "retiring": (N_("Retired, still published"), "yellow"),
    "expired": (N_("Retired"), "grey"),
}


def _shown(state: KeyState, states: list[KeyState]) -> dict[str, Any]:
    """A key as the page shows it; `retirable` when the key ring allows retiring it (an
    active key only while another key of its algorithm signs too)."""
    key = state.key
    others = [s for s in states if s.key.alg == key.alg and s.status == "active" and s is not state]
    return {
        "kid": key.kid,
        "alg": key.alg,
        "status": state.status,
        "activates_at": key.activates_at,
        "signing_until": state.signing_until,
        "published_until": state.published_until,
        "retirable": state.status == "next" or (state.status == "active" and bool(others)),
    }


def _list(call: Call) -> Response:
    states = key_service.list_keys(call.runtime.keyring)
    return show(
        call,
        "admin/keys.html",
        {
            "title": N_("Signing keys"),
            "keys": [_shown(s, states) for s in states],
            "statuses": STATUSES,
            "algs": SUPPORTED_ALGS,
            "delay_minutes": call.runtime.settings.key_activation_delay // 60,
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
    )
    return done(HOME, "rotated")


def _alg(call: Call) -> str:
    """The algorithm of an immediate rotation, from the address (its confirmation's too)."""
    alg = call.query("alg", 16)
    if alg not in SUPPORTED_ALGS:
        raise InvalidInput(
            N_("algorithm '%(alg)s' is not one of %(choices)s"),
            alg=alg,
            choices=", ".join(SUPPORTED_ALGS),
        )
    return alg


def _new_key(call: Call) -> Subject:
    alg = _alg(call)
    return Subject(alg, HOME, {"alg": alg})


def _rotate_now(call: Call) -> Response:
    key_service.rotate_key(
        call.db,
        call.runtime.keyring,
        call.runtime.settings,
        _alg(call),
        actor=call.admin.actor,
        immediately=True,
    )
    return done(HOME, "rotated_now")


def _kid(call: Call) -> str:
    return str(call.request.path_params["kid"])[:200]


def _key(call: Call) -> Subject:
    kid = _kid(call)
    if not any(s.key.kid == kid for s in key_service.list_keys(call.runtime.keyring)):
        raise NotFound(N_("no key '%(kid)s'"), kid=kid)
    return Subject(kid, HOME, {"kid": kid})


def _retire(call: Call) -> Response:
    key_service.retire_key(
        call.db,
        call.runtime.keyring,
        _kid(call),
        actor=call.admin.actor,
        unpublish=call.checked("unpublish"),
    )
    return done(HOME, "retired")


keys_page = admin_view(_list)
rotate_key = admin_view(_rotate, back=lambda request: HOME)
# Actions that cannot be undone are confirmed first, on a page at their own address (GET).
confirm_rotate_now = confirmation(
    N_("Sign with a new key now?"),
    N_(
        "A new %(alg)s key signs from now on, without waiting for e-services to fetch it:"
        " until they do, they may refuse the tokens it signs. Do this only when the"
        " current key is compromised, then retire that key."
    ),
    N_("Sign with a new key now"),
    _new_key,
)
rotate_now = admin_view(_rotate_now)
confirm_retire_key = confirmation(
    N_("Retire the key?"),
    N_(
        "The key %(kid)s stops signing at once. It stays published until the tokens it"
        " signed have expired."
    ),
    N_("Retire the key"),
    _key,
)
retire_key = admin_view(_retire)
