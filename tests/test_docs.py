"""The guides describe the product as it is: every `idp` command in the operator's guide, every
setting of the example e-services in the integration guide."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from typer.main import get_command

from idp.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path)


def _documented(text: str) -> set[str]:
    """The commands a guide names: `idp users list [...] | show U | ...` names `users list` and
    `users show` (the alternatives after `|` belong to the same group)."""
    found: set[str] = set()
    for span in re.findall(r"`(idp [^`]+)`", text):
        first, *others = re.split(r"\s*\\?\|\s*", span)
        words = first.split()[1:]
        name = [w for w in words[:2] if re.fullmatch(r"[a-z][a-z-]*", w)]
        if not name:
            continue
        found.add(" ".join(name))
        found.add(name[0])
        for other in others:
            if re.match(r"[a-z][a-z-]*", other):
                found.add(f"{name[0]} {other.split()[0]}")
    return found


def test_the_operators_guide_names_every_command() -> None:
    documented = _documented((ROOT / "docs" / "operations.md").read_text())
    missing = [name for name in _commands(get_command(app)) if name not in documented]
    assert not missing, f"docs/operations.md does not describe: {missing}"


def test_the_integration_guide_gives_the_settings_and_commands_of_the_examples() -> None:
    guide = (ROOT / "clients" / "README.md").read_text()
    settings = (ROOT / "clients" / "common" / "settings.py").read_text()
    read = set(re.findall(r'env\("([A-Z_]+)"', settings))
    assert read >= {"ISSUER", "CLIENT_SECRET", "BASE_URL"}
    tabled = set(re.findall(r"^\| `([A-Z_]+)` \|", guide, re.M))
    assert tabled == read, "the settings table and common/settings.py differ"
    # The commands that start an example e-service name factories that exist.
    factories = re.findall(r"uvicorn --factory (clients\.\w+\.app):(\w+)", guide)
    assert {module for module, _ in factories} == {"clients.elicensing.app", "clients.ejustice.app"}
    for module, name in factories:
        assert callable(getattr(importlib.import_module(module), name))
    # When citizens see a consent page.
    assert "--first-party" in guide and "prompt=consent" in guide
