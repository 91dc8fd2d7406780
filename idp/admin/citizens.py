"""Admin pages for citizens: search, view (never a secret), disable and enable (ending their
sessions), unlock, reset the second factor, end sessions."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from idp.admin.pages import (
    PAGE_SIZE,
    Call,
    Subject,
    admin_view,
    confirmation,
    current_page,
    done,
    pagination,
    show,
)
from idp.i18n import N_
from idp.services import users as user_service

NOTICES = {
    "disabled": N_("The account is disabled and its sessions have ended."),
    "enabled": N_("The account is enabled again."),
    "unlocked": N_("The account is unlocked."),
    "second_factor_reset": N_(
        "The second factor is reset. The citizen sets up a new one at the next sign-in."
    ),
    "sessions_ended": N_("Every session of the account has ended."),
}


# The sign-in state of an account (`Throttle.state`), as the console says it.
SIGN_IN_STATES = {
    "ok": N_("Can sign in"),
    "delayed": N_("Delayed after failed attempts"),
    "locked": N_("Locked for a while"),
    "locked_until_unlock": N_("Locked until an administrator unlocks it"),
}


def detail_path(username: str) -> str:
    return f"/admin/citizens/{username}"


def _back(request: Request) -> str:
    return detail_path(str(request.path_params["username"]))


def _username(call: Call) -> str:
    return str(call.request.path_params["username"])[:150]


def _list(call: Call) -> Response:
    query = call.query("q")
    number = current_page(call.request)
    rows, total = user_service.search_users(
        call.db, query, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    return show(
        call,
        "admin/citizens.html",
        {
            "title": N_("Citizens"),
            "query": query,
            "citizens": [user_service.describe(u) for u in rows],
            "pagination": pagination(call.request, total, number),
        },
    )


def _detail(call: Call) -> Response:
    user = user_service.get_user(call.db, _username(call))
    return show(
        call,
        "admin/citizen.html",
        {
            "title": N_("Citizen"),
            "citizen": user_service.describe(user),
            "created_at": user.created_at,
            "sign_in_state": call.runtime.throttle.state(call.db, user.id),
            "sign_in_states": SIGN_IN_STATES,
            "sessions": user_service.live_sessions(call.db, user),
            "notice": NOTICES.get(call.query("done")),
        },
    )


def _subject(call: Call) -> Subject:
    user = user_service.get_user(call.db, _username(call))
    return Subject(user.username, detail_path(user.username), {"username": user.username})


def _action(run: Callable[[Call, str], object], code: str) -> Callable[[Call], Response]:
    def action(call: Call) -> Response:
        username = _username(call)
        run(call, username)
        return done(detail_path(username), code)

    return action


citizens_page = admin_view(_list)
citizen_page = admin_view(_detail)
enable_citizen = admin_view(
    _action(
        lambda call, name: user_service.set_disabled(call.db, name, False, actor=call.admin.actor),
        "enabled",
    ),
    back=_back,
)
unlock_citizen = admin_view(
    _action(
        lambda call, name: user_service.unlock(call.db, name, actor=call.admin.actor), "unlocked"
    ),
    back=_back,
)
# Actions that cannot be undone are confirmed first, on a page at their own address (GET).
confirm_disable_citizen = confirmation(
    N_("Disable the account?"),
    N_(
        "%(username)s can no longer sign in, every session of the account ends now, and"
        " the e-services are told to sign them out."
    ),
    N_("Disable the account"),
    _subject,
)
disable_citizen = admin_view(
    _action(
        lambda call, name: user_service.set_disabled(call.db, name, True, actor=call.admin.actor),
        "disabled",
    )
)
confirm_reset_second_factor = confirmation(
    N_("Reset the second factor?"),
    N_(
        "The authenticator app and the recovery codes of %(username)s stop working, and"
        " every session of the account ends. They set up a new app at the next sign-in:"
        " do this only once you know who is asking."
    ),
    N_("Reset the second factor"),
    _subject,
)
reset_second_factor = admin_view(
    _action(
        lambda call, name: user_service.reset_second_factor(call.db, name, actor=call.admin.actor),
        "second_factor_reset",
    )
)
confirm_end_sessions = confirmation(
    N_("End every session?"),
    N_("%(username)s is signed out everywhere, and must sign in again on every device."),
    N_("End every session"),
    _subject,
)
end_sessions = admin_view(
    _action(
        lambda call, name: user_service.end_sessions(call.db, name, actor=call.admin.actor),
        "sessions_ended",
    )
)
