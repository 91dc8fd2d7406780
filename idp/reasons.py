"""Reasons for a refusal that each audience reads in its own language.

A reason is a catalog message id (marked with `N_` where it is raised, or `N_n` for a message
with a number) and named values:
`str(reason)` is the English text, what the command line and the JSON APIs say;
`reason.translated(_)` is the text in a page's language, with `_ = idp.i18n.gettext_for(locale)`.
A value that is a `Term` (a message id such as "redirect URI") or itself a `Reason` is
translated along with the message; other values are shown as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from idp.i18n import Message, english

Translate = Callable[..., str]


class Term(str):
    """A message id used as a value of another message; translated with it."""

    __slots__ = ()


def _shown(value: Any) -> Any:
    """Values as an operator may see them: text with control characters is escaped."""
    if isinstance(value, str) and not isinstance(value, Term) and not value.isprintable():
        return repr(value)[1:-1]
    return value


def _fill(message: Message, values: Mapping[str, Any], translate: Translate | None) -> str:
    if translate is None:
        return english(
            message, **{k: str(v) if isinstance(v, Reason) else v for k, v in values.items()}
        )
    local: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Reason):
            local[name] = value.translated(translate)
        elif isinstance(value, Term):
            local[name] = translate(str(value))
        else:
            local[name] = value
    return translate(message, **local)


class Reason(Exception):
    """An exception whose text is a translatable message with named `%(name)s` values."""

    def __init__(self, message: Message, /, **values: Any) -> None:
        self.message = message
        self.values = {name: _shown(value) for name, value in values.items()}
        super().__init__(_fill(message, self.values, None))

    def translated(self, translate: Translate) -> str:
        """The reason in the language of `translate`; English if its catalog entry is broken."""
        try:
            return _fill(self.message, self.values, translate)
        except (KeyError, ValueError, TypeError):
            return str(self)


def translated(error: BaseException, translate: Translate) -> str:
    """Any exception's reason in the language of `translate` (its text if it has no id)."""
    return error.translated(translate) if isinstance(error, Reason) else str(error)
