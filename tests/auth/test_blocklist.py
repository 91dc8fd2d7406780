"""Common and breached passwords are refused, with the reason, whatever their case or form."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.auth.blocklist import Blocklist, blocklist, build, is_blocked
from idp.auth.passwords import BLOCKED_REASON, PasswordRejected, check_policy


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "12345678",
        "qwertyuiop",
        "iloveyou",
        "PassWord1",
        "QWERTY123",
        "\uff30\uff41\uff53\uff53\uff57\uff4f\uff52\uff44",  # full-width letters,
    ],
)
def test_common_passwords_are_blocked_in_any_case_and_width(password: str) -> None:
    assert is_blocked(password)


@pytest.mark.parametrize(
    "password", ["ambling-otter-under-ararat", "Sevan lake at dawn 1987!", "", "password-otter-x"]
)
def test_other_passwords_pass(password: str) -> None:
    assert not is_blocked(password)


def test_whole_password_is_compared_not_substrings() -> None:
    assert is_blocked("sunshine")
    assert not is_blocked("sunshine over the ararat valley")


def test_the_shipped_list_is_large_and_loaded_once() -> None:
    assert len(blocklist()) > 1_000_000
    assert blocklist() is blocklist()
    assert blocklist().blob.nbytes < 8 * 1024 * 1024


def test_check_policy_refuses_a_breached_password_with_the_reason() -> None:
    with pytest.raises(PasswordRejected) as refused:
        check_policy("baseball123")
    assert str(refused.value) == BLOCKED_REASON
    check_policy("ambling-otter-under-ararat")


def test_a_built_list_finds_exactly_its_entries(tmp_path: Path) -> None:
    words = {f"word{i:05d}" for i in range(2000)} | {"Ünïcode-Pässword", "ﬁnal"}
    path = tmp_path / "list.bin"
    path.write_bytes(build(words, block_size=16))
    loaded = Blocklist.load(path)
    assert len(loaded) == len(words)
    assert all(word in loaded for word in words)
    assert "ünïcode-pässword" in loaded
    assert "final" in loaded  # NFKC turns the ligature into two letters
    assert "word02000" not in loaded
    assert "" not in loaded
    assert "a" not in loaded  # before the first block


def test_a_damaged_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.bin"
    path.write_bytes(build({"one", "two"})[:-3])
    with pytest.raises(ValueError, match="damaged"):
        Blocklist.load(path)
    path.write_bytes(b"not a blocklist at all, no")
    with pytest.raises(ValueError, match="not a password blocklist"):
        Blocklist.load(path)
