"""Administrative actions, one plain function each, shared by the CLI, admin pages and admin API.

Every function takes an open SQLAlchemy session (the caller commits or rolls back the whole
action), checks its input, raises a ServiceError with a one-line reason on bad input (having
written nothing), and records an audit event. What must not hold the database, such as
fetching a document an e-service publishes, is a coroutine of its own that the caller awaits
before the transaction (`clients.check_client`).
"""

from idp.services.errors import Conflict, InvalidInput, NotFound, ServiceError

__all__ = ["Conflict", "InvalidInput", "NotFound", "ServiceError"]
