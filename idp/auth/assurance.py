"""Assurance levels (`acr`) and the authentication methods (`amr`, RFC 8176) that reach them.

- `low`: a password alone.
- `substantial`: a password and a one-time code (TOTP, recovery code or email code).
- `high`: reserved for hardware-bound authenticators (`hwk`), not offered yet.
"""

from __future__ import annotations

from idp.i18n import N_

ACR_VALUES = ("low", "substantial", "high")

# RFC 8176 method values this provider records.
KNOWLEDGE = frozenset({"pwd"})
ONE_TIME = frozenset({"otp"})
HARDWARE = frozenset({"hwk"})

# What a citizen reads for each level and method (message ids, translated where shown).
ACR_LABELS = {"low": N_("Low"), "substantial": N_("Substantial"), "high": N_("High")}
AMR_LABELS = {
    "pwd": N_("Password"),
    "otp": N_("One-time code"),
    "hwk": N_("Security key"),
    "mfa": N_("Two-step sign-in"),
}


def acr_for_amr(amr: list[str]) -> str:
    """The assurance level that a set of authentication methods reaches."""
    methods = set(amr)
    if not methods & KNOWLEDGE:
        return "low"
    if methods & HARDWARE:
        return "high"
    if methods & ONE_TIME:
        return "substantial"
    return "low"


def rank(acr: str | None) -> int:
    """Position of `acr` in `ACR_VALUES` (-1 when unknown)."""
    return ACR_VALUES.index(acr) if acr in ACR_VALUES else -1


def satisfies(acr: str, required: str | None) -> bool:
    """Whether a session at level `acr` is good enough for a request that needs `required`."""
    if required is None:
        return rank(acr) >= 0
    needed = rank(required)
    return needed >= 0 and rank(acr) >= needed


def amr_with(amr: list[str], method: str) -> list[str]:
    """`amr` with `method` added, and `mfa` once two kinds of factor are present."""
    methods = [m for m in amr if m != "mfa"]
    if method not in methods:
        methods.append(method)
    if set(methods) & KNOWLEDGE and set(methods) & (ONE_TIME | HARDWARE):
        methods.append("mfa")
    return methods
