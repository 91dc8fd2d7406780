"""Admin page listing the citizens' "this wasn't me" reports (newest first)."""

from __future__ import annotations

from starlette.responses import Response

from idp.account.compromise import open_reports
from idp.admin.pages import Call, admin_view, show
from idp.i18n import N_


def _reports(call: Call) -> Response:
    return show(
        call,
        "admin/security_reports.html",
        {"title": N_("Security reports"), "reports": open_reports(call.db)},
    )


reports_page = admin_view(_reports)
