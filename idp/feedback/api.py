"""`POST /ratings`: an e-service rates, in its own words, a transaction of one of its citizens.

The e-service presents an access token it obtained with the client-credentials grant and the
`ratings` scope (RFC 6750 Bearer, in the `Authorization` header), which is checked before the
body is read. The body is a JSON object:

- `sub` (required): the citizen's subject towards this e-service (public or pairwise), of a
  citizen who has signed in to it;
- `score` (required): a whole number from 1 (very dissatisfied) to 5 (very satisfied);
- `comment` (optional): up to 1000 characters, read by administrators only, erased after
  `feedback_comment_retention_days`;
- `transaction_at` (optional): when the transaction happened, RFC 3339 with a time zone,
  within the last 31 days; the rating counts on that day (default: now).

201 with the rating's id; 400 `invalid_request` (the description names the field) or
`unknown_subject`; 401 `invalid_token`; 403 `insufficient_scope`; 415 for a body that is not
JSON. The rating is stored by `idp.services.feedback.rate_by_eservice`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.db.models import Client
from idp.json_input import JsonInputError, parse_json
from idp.oauth import tokens
from idp.oauth.endpoints import bearer_error, bearer_token
from idp.oauth.scopes import RATINGS_SCOPE
from idp.runtime import Runtime
from idp.services import ServiceError, feedback
from idp.text import storable

MAX_BODY = 8 * 1024
NO_STORE = {"Cache-Control": "no-store"}


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sub: StrictStr = Field(min_length=1, max_length=255)
    score: StrictInt = Field(ge=1, le=5)
    comment: StrictStr | None = Field(default=None, max_length=feedback.MAX_COMMENT)
    transaction_at: datetime | None = None


class Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _bearer_refusal(status: int, error: str, description: str) -> Refused:
    found = bearer_error(
        status,
        error,
        description,
        realm="ratings",
        scope=RATINGS_SCOPE if error == "insufficient_scope" else None,
    )
    assert isinstance(found.body, dict)
    return Refused(JSONResponse(found.body, status_code=found.status, headers=found.headers))


def _invalid(error: str, description: str, status: int = 400) -> Refused:
    return Refused(
        JSONResponse(
            {"error": error, "error_description": description},
            status_code=status,
            headers=NO_STORE,
        )
    )


def rating_client(db: Session, token: str) -> Client:
    """The e-service behind a token that may post ratings, or the refusal."""
    live = tokens.live_access_token(db, token)
    client = (
        db.scalar(select(Client).where(Client.client_id == live.row.client_id))
        if live is not None
        else None
    )
    if live is None or client is None or client.disabled:
        raise _bearer_refusal(401, "invalid_token", "The access token is invalid or expired.")
    if (
        live.grant.user_id is not None
        or RATINGS_SCOPE not in live.row.scope.split()
        or RATINGS_SCOPE not in client.scope.split()
    ):
        raise _bearer_refusal(
            403, "insufficient_scope", "The token does not grant the ratings scope."
        )
    return client


def _body(raw: bytes) -> RatingIn:
    try:
        data = parse_json(raw, max_size=MAX_BODY)
    except JsonInputError as exc:
        raise _invalid("invalid_request", f"The body is {exc}.") from None
    if not isinstance(data, dict):
        raise _invalid("invalid_request", "The body must be a JSON object.")
    try:
        body = RatingIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise _invalid("invalid_request", f"{where}: {first['msg']}") from None
    if not storable(body.sub):
        raise _invalid("invalid_request", "sub: must be clean text")
    return body


async def ratings(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    presented = bearer_token(request.headers, {}, dict(request.query_params))
    try:
        if presented is False or not presented:
            raise _bearer_refusal(
                401, "invalid_token", "Send the access token in the Authorization header."
            )
        token = str(presented)

        def check() -> None:
            with runtime.db.read() as db:
                rating_client(db, token)

        await run_in_threadpool(check)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _invalid("invalid_request", "Send a JSON object (application/json).", 415)
        body = _body(await request.body())
    except Refused as refused:
        return refused.response

    def record() -> Response:
        try:
            with runtime.db.transaction() as db:
                client = rating_client(db, token)
                rating = feedback.rate_by_eservice(
                    db,
                    runtime,
                    client=client,
                    sub=body.sub,
                    score=body.score,
                    comment=body.comment,
                    transaction_at=body.transaction_at,
                )
                answer: dict[str, Any] = {
                    "id": rating.id,
                    "score": rating.score,
                    "counted_on": rating.occurred_at.date().isoformat(),
                }
        except Refused as refused:
            return refused.response
        except ServiceError as error:
            return _invalid(
                error.code if isinstance(error, feedback.UnknownSubject) else "invalid_request",
                str(error),
            ).response
        return JSONResponse(answer, status_code=201, headers=NO_STORE)

    return await run_in_threadpool(record)
