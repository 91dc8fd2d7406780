"""What a service function raises when it refuses an action.

Each refusal is a `Reason`: a translatable message id with named values, e.g.
`InvalidInput(N_("redirect URI must use https: '%(uri)s'"), uri=value)`. `str(error)` is the
one-line English reason the command line and the JSON APIs give; the admin pages show
`error.translated(_)` in the administrator's language.
"""

from idp.reasons import Reason


class ServiceError(Reason):
    """An action refused; `str(error)` is a one-line reason fit for an operator."""

    code = "invalid"


class InvalidInput(ServiceError):
    code = "invalid_input"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"
