"""What a service function raises when it refuses an action."""


class ServiceError(Exception):
    """An action refused; `str(error)` is a one-line reason fit for an operator."""

    code = "invalid"


class InvalidInput(ServiceError):
    code = "invalid_input"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"
