"""Seed a PostgreSQL database with many citizens and tokens, quickly (COPY).

    python -m bench.seed postgresql://postgres@127.0.0.1:5432/idp_bench \
        --citizens 1000000 --tokens 10000000

The schema must exist (`idp db upgrade`). Citizens get a profile, the same argon2id password
hash and an encrypted one-time-code seed; tokens are half access tokens, half refresh tokens,
in grants of one citizen each (a quarter of them already expired, as in a live system). Token
values are never needed, so their stored SHA-256 values are random. The secondary indexes and
constraints of the seeded tables are dropped during the load and rebuilt after it (what a bulk
load does), then the tables are analysed; the result is the same schema with more rows.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

TABLES = ("users", "totp_credentials", "token_grants", "access_tokens", "refresh_tokens")
CHUNK = 50_000
PASSWORD_HASH = (
    "$argon2id$v=19$m=47104,t=2,p=1$YmVuY2hzZWVkc2FsdA$"
    "2Jq3hJ3dW1jH0S9wq1bqkqf0l6m8mUoX6Jm0kq3B9iE"  # never matches: seeded citizens never sign in
)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S+00")


def _schema_extras(cur: psycopg.Cursor) -> list[tuple[str, str, str]]:
    """(table, drop statement, create statement) for every secondary index and constraint."""
    extras: list[tuple[str, str, str]] = []
    cur.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('u', 'f')
        ORDER BY c.contype DESC
        """,
        (list(TABLES),),
    )
    for table, name, definition in cur.fetchall():
        extras.append(
            (
                table,
                f'ALTER TABLE {table} DROP CONSTRAINT "{name}"',
                f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}',
            )
        )
    cur.execute(
        """
        SELECT i.tablename, i.indexname, i.indexdef
        FROM pg_indexes i
        WHERE i.tablename = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        (list(TABLES),),
    )
    for table, name, definition in cur.fetchall():
        extras.append((table, f'DROP INDEX "{name}"', definition))
    return extras


def _copy(
    cur: psycopg.Cursor, table: str, columns: str, count: int, row: Callable[[int], str]
) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for start in range(0, count, CHUNK):
            copy.write("".join(row(n) for n in range(start, min(count, start + CHUNK))))


def seed(url: str, citizens: int, tokens: int, encrypted_seed: str) -> None:
    now_dt = datetime.now(UTC)
    now = _ts(now_dt)
    live = _ts(now_dt + timedelta(hours=12))
    expired = _ts(now_dt - timedelta(hours=1))
    pairs = tokens // 2
    with psycopg.connect(url, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM users")
        base_user = int(cur.fetchone()[0])  # type: ignore[index]
        cur.execute("SELECT coalesce(max(id), 0) FROM token_grants")
        base_grant = int(cur.fetchone()[0])  # type: ignore[index]
        extras = _schema_extras(cur)
        for _table, drop, _create in extras:
            cur.execute(drop)
        began = time.monotonic()

        def user_row(n: int) -> str:
            return (
                f"{secrets.token_urlsafe(24)}\tcitizen-{n:07d}\tcitizen-{n:07d}@seed.example\tt\t"
                f"Citizen\tNumber {n}\t{PASSWORD_HASH}\t{now}\tf\tf\tf\t{now}\t{now}\n"
            )

        _copy(
            cur,
            "users",
            "sub, username, email, email_verified, given_name, family_name, password_hash, "
            "password_changed_at, must_change_password, is_admin, phone_number_verified, "
            "created_at, updated_at",
            citizens,
            user_row,
        )
        _copy(
            cur,
            "totp_credentials",
            "user_id, secret_encrypted, confirmed_at, created_at",
            citizens,
            lambda n: f"{base_user + n + 1}\t{encrypted_seed}\t{now}\t{now}\n",
        )
        _say(f"{citizens} citizens", began)

        def grant(n: int) -> str:
            user_id = base_user + 1 + n % max(citizens, 1)
            return (
                f"bench-web\t{user_id}\topenid profile offline_access\tsubstantial\t"
                f'["pwd", "otp", "mfa"]\t{now}\t{now}\t{live}\n'
            )

        _copy(
            cur,
            "token_grants",
            "client_id, user_id, scope, acr, amr, auth_time, created_at, expires_at",
            pairs,
            grant,
        )

        def token(kind: str) -> Callable[[int], str]:
            def row(n: int) -> str:
                ends = expired if n % 4 == 0 else live
                extra = f"{os.urandom(16).hex()}\topaque\t" if kind == "access" else ""
                return (
                    f"{os.urandom(32).hex()}\t{extra}{base_grant + n + 1}\tbench-web\t"
                    f"openid profile offline_access\t{now}\t{ends}\n"
                )

            return row

        _copy(
            cur,
            "access_tokens",
            "token_hash, jti, format, grant_id, client_id, scope, created_at, expires_at",
            pairs,
            token("access"),
        )
        _copy(
            cur,
            "refresh_tokens",
            "token_hash, grant_id, client_id, scope, created_at, expires_at",
            pairs,
            token("refresh"),
        )
        _say(f"{pairs} grants, {pairs} access and {pairs} refresh tokens", began)
        for _table, _drop, create in extras:
            cur.execute(create)
        _say("indexes and constraints rebuilt", began)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
        # Write the loaded pages out now, not during the measurement that follows.
        conn.execute("CHECKPOINT")
    _say("analysed and checkpointed", began)


def _say(what: str, began: float) -> None:
    print(f"seed: {what} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="postgresql://... of a database with the schema")
    parser.add_argument("--citizens", type=int, default=1_000_000)
    parser.add_argument("--tokens", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    from idp.config import load_settings
    from idp.security import SecretBox, master_key

    box = SecretBox(master_key(load_settings()))
    encrypted = box.encrypt("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    seed(
        args.url.replace("postgresql+psycopg://", "postgresql://"),
        args.citizens,
        args.tokens,
        encrypted,
    )


if __name__ == "__main__":
    main()
