"""Time-based one-time codes (RFC 6238): 6 digits, 30-second steps, one step of drift either way.

Each code is accepted once per citizen, also when the same code is submitted twice at the same
moment: acceptance is an atomic conditional UPDATE of `totp_credentials.last_used_step`, so of
two transactions presenting a code of the same (or an older) step exactly one wins.

Setting up an app: a new seed is shown, *sealed* (encrypted) for the sign-in that showed it
(the interaction of the sign-in pages, the session of the account pages), and stored nowhere
else. Only a code from it, presented in that same sign-in, makes it the citizen's app
(`confirm`): a seed shown to another browser, say to someone who knows the password, can never
become the citizen's app, and each new sign-in shows a new seed.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import UTC, datetime
from html import escape

import pyotp
import segno
from sqlalchemy import or_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from idp.auth import codes
from idp.db.inserts import upsert
from idp.db.models import TotpCredential, User
from idp.i18n import N_
from idp.security import SecretBox

DIGITS = 6
PERIOD = 30
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends (NIST: at least 112)
MALFORMED = N_("A code is 6 digits, for example 123456. Enter the 6 digits your app shows now.")


class AlreadyEnrolled(Exception):
    """The citizen already has a confirmed authenticator app (set up meanwhile elsewhere)."""


def new_secret() -> str:
    """A fresh seed from the operating system's CSPRNG, in base32 without padding."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def provisioning_uri(secret: str, *, account: str, issuer_name: str) -> str:
    """The `otpauth://` URI that authenticator apps read from the QR code."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    return str(totp.provisioning_uri(name=account, issuer_name=issuer_name))


def qr_svg(uri: str, *, title: str = "QR code for your authenticator app") -> str:
    """An inline SVG QR code: dark on light (readable in dark mode too), named for screen
    readers by its `<title>` and `role="img"`."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, dark="#000", light="#fff", title=title, omitsize=True, svgclass="qr"
    )
    label = escape(title, quote=True)
    return str(svg).replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def well_formed(code: str) -> bool:
    """Whether `code` can be a code at all (else the page says `MALFORMED`)."""
    return codes.is_digits(code, DIGITS)


def matching_step(secret: str, code: str, *, now: datetime | None = None) -> int | None:
    """The time step whose code this is (now, one before or one after), else None.

    Every candidate is compared in constant time, whether or not an earlier one matched.
    """
    current = int((now or datetime.now(UTC)).timestamp()) // PERIOD
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    found: int | None = None
    possible = well_formed(code)
    candidate = codes.compact(code) if possible else "0" * DIGITS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(str(totp.generate_otp(step)), candidate) and possible:
            found = step
    return found


def verify_and_consume(
    session: Session,
    credential: TotpCredential,
    code: str,
    box: SecretBox,
    *,
    now: datetime | None = None,
) -> bool:
    """Accept the code if it is valid now and newer than the last one accepted, once.
    Only a confirmed app signs anyone in."""
    if credential.confirmed_at is None:
        return False
    step = matching_step(box.decrypt(credential.secret_encrypted), code, now=now)
    if step is None:
        return False
    result = session.execute(
        update(TotpCredential)
        .where(
            TotpCredential.id == credential.id,
            or_(TotpCredential.last_used_step.is_(None), TotpCredential.last_used_step < step),
        )
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    set_committed_value(credential, "last_used_step", step)
    return True


def seal(box: SecretBox, secret: str, *, bound_to: str, now: datetime | None = None) -> str:
    """A seed being set up, encrypted for one sign-in (`bound_to`: an interaction id or a
    session's `sid`), with the time it was made."""
    made = int((now or datetime.now(UTC)).timestamp())
    return box.encrypt(f"{bound_to}:{made}:{secret}")


def unseal(
    box: SecretBox,
    sealed: str,
    *,
    bound_to: str,
    max_age: int | None = None,
    now: datetime | None = None,
) -> str | None:
    """The seed of `sealed` if it was made for `bound_to` (at most `max_age` seconds ago);
    None for anything else: another sign-in's seed, a stale, tampered or foreign value."""
    try:
        owner, made, secret = box.decrypt(sealed).rsplit(":", 2)
        age = int((now or datetime.now(UTC)).timestamp()) - int(made)
    except ValueError:
        return None
    if not hmac.compare_digest(owner, bound_to) or (max_age is not None and age > max_age):
        return None
    return secret


def confirm(
    session: Session,
    user: User,
    secret: str,
    code: str,
    box: SecretBox,
    *,
    replace: bool,
    now: datetime | None = None,
) -> bool:
    """Make `secret` the citizen's authenticator app, if `code` is a code of it now (the code
    is then used up). With `replace` it takes the place of a confirmed app; without, a
    confirmed app already there (set up meanwhile in another sign-in) raises AlreadyEnrolled.
    One statement, so that of two simultaneous set-ups without `replace` exactly one wins."""
    now = now or datetime.now(UTC)
    step = matching_step(secret, code, now=now)
    if step is None:
        return False
    values = {
        "secret_encrypted": box.encrypt(secret),
        "confirmed_at": now,
        "last_used_step": step,
        "created_at": now,
    }
    statement = upsert(session, TotpCredential).values(user_id=user.id, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[TotpCredential.user_id],
        set_=values,
        where=None if replace else TotpCredential.confirmed_at.is_(None),
    ).returning(TotpCredential.id)
    previous = user.totp
    written = session.execute(statement).scalar_one_or_none()
    if previous is not None:
        session.expire(previous)
    session.expire(user, ["totp"])  # read again when next used
    if written is None:
        raise AlreadyEnrolled("an authenticator app was set up meanwhile for this account")
    return True


def remove(session: Session, user: User) -> bool:
    """Remove the citizen's authenticator app (after re-authentication); True if one existed."""
    if user.totp is None:
        return False
    session.delete(user.totp)
    user.totp = None
    session.flush()
    return True
