"""Time-based one-time codes (RFC 6238): 6 digits, 30-second steps, one step of drift either way.

Each code is accepted once per citizen, also when the same code is submitted twice at the same
moment: acceptance is an atomic conditional UPDATE of `totp_credentials.last_used_step`, so of
two transactions presenting a code of the same (or an older) step exactly one wins.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from datetime import UTC, datetime
from html import escape

import pyotp
import segno
from sqlalchemy import or_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from idp.db.models import TotpCredential, User
from idp.security import SecretBox

DIGITS = 6
PERIOD = 30
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends (NIST: at least 112)
CODE = re.compile(r"^[0-9]{6}$")


class AlreadyEnrolled(Exception):
    """The citizen already has a confirmed authenticator app; remove it first."""


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


def normalize_code(code: str) -> str:
    """Codes as people type them: spaces and dashes ignored."""
    return re.sub(r"[\s-]", "", code)


def matching_step(secret: str, code: str, *, now: datetime | None = None) -> int | None:
    """The time step whose code this is (now, one before or one after), else None.

    Every candidate is compared in constant time, whether or not an earlier one matched.
    """
    code = normalize_code(code)
    current = int((now or datetime.now(UTC)).timestamp()) // PERIOD
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    found: int | None = None
    well_formed = CODE.fullmatch(code) is not None
    candidate = code if well_formed else "0" * DIGITS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(str(totp.generate_otp(step)), candidate) and well_formed:
            found = step
    return found


def verify_and_consume(
    session: Session,
    credential: TotpCredential,
    code: str,
    box: SecretBox,
    *,
    now: datetime | None = None,
    allow_unconfirmed: bool = False,
) -> bool:
    """Accept the code if it is valid now and newer than the last one accepted, once.

    Sign-in uses confirmed credentials only; `confirm` passes `allow_unconfirmed`.
    """
    if credential.confirmed_at is None and not allow_unconfirmed:
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


def enrol(session: Session, user: User, box: SecretBox) -> tuple[TotpCredential, str]:
    """Start enrolment: an unconfirmed credential with a new seed (replacing an unconfirmed
    one). Returns it and the seed, to show once as a QR code and as text."""
    secret = new_secret()
    credential = user.totp
    if credential is not None and credential.confirmed_at is not None:
        raise AlreadyEnrolled("an authenticator app is already set up for this account")
    if credential is None:
        credential = TotpCredential(user_id=user.id, secret_encrypted=box.encrypt(secret))
        user.totp = credential
    else:
        credential.secret_encrypted = box.encrypt(secret)
        credential.last_used_step = None
        credential.created_at = datetime.now(UTC)
    session.flush()
    return credential, secret


def confirm(
    session: Session,
    credential: TotpCredential,
    code: str,
    box: SecretBox,
    *,
    now: datetime | None = None,
) -> bool:
    """Finish enrolment with a valid code from the app (which is then used up)."""
    if not verify_and_consume(session, credential, code, box, now=now, allow_unconfirmed=True):
        return False
    if credential.confirmed_at is None:
        credential.confirmed_at = now or datetime.now(UTC)
        session.flush()
    return True


def remove(session: Session, user: User) -> bool:
    """Remove the citizen's authenticator app (after re-authentication); True if one existed."""
    if user.totp is None:
        return False
    session.delete(user.totp)
    user.totp = None
    session.flush()
    return True
