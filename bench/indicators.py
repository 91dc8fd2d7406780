"""The indicators dashboard with 10 million events: seed, roll up, time the dashboard queries.

Seeds `--events` sign-in events in time order (started, completed, failed, consents, and the
e-services' and citizens' ratings; `--days` days, `--services` e-services, `--citizens`
citizens, whose accounts it makes too) straight into a fresh PostgreSQL schema with COPY, with
each e-service's monthly transactions by channel and costs, brings the rollups up to date
(`idp.stats.rollup`, as `idp stats rollup` does), then times the dashboard's report for a
month by day, a quarter by week and the whole span by month, and the e-services side by side
for a month and the whole span (best of three, each report with the
exact unique-citizen count of its range and its key indicators beside the range before), and
the public page's monthly figures of every e-service. Prints one JSON object. The schema is
dropped at the end, unless `--keep`; `--schema NAME` times the reports again on a kept one.

    .venv/bin/python -m bench.indicators --database postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from idp.config import Settings
from idp.db import Database
from idp.db.migrate import upgrade
from idp.db.models import ChannelTotal, ServiceCost
from idp.logging import configure_logging
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.stats import eservices, indicators, public, rollup

ADULTS = 2_200_000  # the adult population, for the share with an active identity


def _driver(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def events(count: int, days: int, services: int, citizens: int, first: date) -> Iterator[str]:
    """COPY lines: (seq, at, type, outcome, client_id, user_id, data)."""
    rng = random.Random(7)
    seq = 0
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    gap = days * 86400 / max(count // 2, 1)  # mean seconds between two sign-ins
    offset = 0.0
    while seq < count:
        # In time order, as the audit chain numbers them (each event is sealed after commit).
        offset = min(offset + rng.expovariate(1 / gap), days * 86400 - 1)
        at = start + timedelta(seconds=int(offset))
        client = f"service-{rng.randrange(services):02d}"
        user = rng.randrange(1, citizens + 1)
        stamp = at.isoformat()
        seq += 1
        yield f"{seq}\t{stamp}\tsignin.started\tsuccess\t{client}\t\\N\t{{}}\n"
        roll = rng.random()
        if roll < 0.8:
            sso = rng.random() < 0.3
            data = {
                "acr": "substantial" if rng.random() < 0.9 else "low",
                "amr": ["mfa", "otp", "pwd"],
                "sso": sso,
                "seconds": None if sso else rng.randrange(5, 120),
            }
            kind, outcome = "signin.completed", "success"
            if rng.random() < RATED:  # a rating of this sign-in or of its transaction
                source = "signin" if rng.random() < 0.4 else "eservice"
                score, on = rng.choice(SCORES), at.date().isoformat()
                rating = json.dumps({"source": source, "score": score, "on": on})
                seq += 1
                yield f"{seq}\t{stamp}\tfeedback.rated\tsuccess\t{client}\t\\N\t{rating}\n"
        elif roll < 0.95:
            data = {"reason": rng.choice(["credentials", "invalid_code"])}
            kind, outcome = "auth.password", "failure"
        else:
            data, kind, outcome = {}, "consent.granted", "success"
        seq += 1
        yield f"{seq}\t{stamp}\t{kind}\t{outcome}\t{client}\t{user}\t{json.dumps(data)}\n"


RATED = 0.05
SCORES = (1, 2, 3, 3, 4, 4, 4, 5, 5, 5)


def reported(
    services: int, first: date, days: int
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Each e-service's transactions by channel and cost for every month of the span."""
    rng = random.Random(11)
    months = sorted({(first + timedelta(days=n)).replace(day=1) for n in range(days)})
    channels, costs = [], []
    for index in range(services):
        client = f"service-{index:02d}"
        for month in months:
            online = rng.randrange(20_000, 90_000)
            rest = rng.randrange(5_000, 40_000)
            for channel, count in (("online", online), ("in_person", rest), ("phone", rest // 3)):
                channels.append(
                    {"client_id": client, "month": month, "channel": channel, "transactions": count}
                )
            costs.append(
                {"client_id": client, "month": month, "amount_minor": rng.randrange(10**8, 10**9)}
            )
    return channels, costs


def timed(call: object) -> float:
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        call()  # type: ignore[operator]
        best = min(best, time.perf_counter() - began)
    return round(best, 3)


def _seed_and_roll_up(
    args: argparse.Namespace,
    database: Database,
    settings: Settings,
    first: date,
    figures: dict[str, object],
) -> None:
    upgrade(database.engine)
    began = time.perf_counter()
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET statement_timeout = 0")
        columns = "seq, at, type, outcome, client_id, user_id, data"
        with cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for line in events(args.events, args.days, args.services, args.citizens, first):
                copy.write(line)
        # The citizens' accounts, three in four with an authenticator app (second-factor
        # adoption is counted from them), made over the year before and the span.
        cursor.execute(
            "INSERT INTO users (sub, username, email_verified, phone_number_verified,"
            " must_change_password, is_admin, created_at, updated_at)"
            " SELECT 'bench-' || g, 'citizen-' || g, false, false, false, false,"
            " %s::timestamp + (g %% %s - 365) * interval '1 day', %s::timestamp"
            " FROM generate_series(1, %s) g",
            (first.isoformat(), 365 + args.days, first.isoformat(), args.citizens),
        )
        cursor.execute(
            "INSERT INTO totp_credentials (user_id, secret_encrypted, confirmed_at,"
            " created_at) SELECT id, 'x', created_at + interval '2 days', created_at"
            " FROM users WHERE id % 4 <> 0"
        )
        cursor.execute("ANALYZE users; ANALYZE totp_credentials")
        cursor.execute(
            "INSERT INTO audit_chain_head (id, seq, last_hash, anchor_seq, anchor_hash,"
            " updated_at) SELECT 1, max(seq), %s, 0, %s, now() FROM events",
            ("0" * 64, "0" * 64),
        )
        raw.commit()
    finally:
        raw.close()
    figures["seed_seconds"] = round(time.perf_counter() - began, 1)
    runtime = Runtime.build(settings)
    channels, costs = reported(args.services, first, args.days)
    with runtime.db.transaction() as db:
        db.execute(insert(ChannelTotal), channels)
        db.execute(insert(ServiceCost), costs)
        for index in range(args.services):
            service = f"service-{index:02d}"
            client_service.register_client(
                db,
                client_service.NewClient(
                    name=service,
                    client_id=service,
                    redirect_uris=[f"https://{service}.example.am/cb"],
                ),
                actor="bench",
            )
            client_service.set_indicator_settings(db, service, public_stats=True, actor="bench")
    began = time.perf_counter()
    figures["counted"] = rollup.run(runtime, batch=200_000)
    figures["rollup_seconds"] = round(time.perf_counter() - began, 1)
    runtime.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--citizens", type=int, default=500_000)
    parser.add_argument(
        "--keep", action="store_true", help="keep the schema (its name is in the figures)"
    )
    parser.add_argument(
        "--schema", help="time the reports again on a schema kept by --keep (no seed, no rollup)"
    )
    args = parser.parse_args()
    configure_logging(json=False, level="WARNING")  # stdout holds the figures alone

    url = _driver(args.database)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    schema = args.schema or f"bench_{uuid.uuid4().hex[:10]}"
    if not args.schema:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    figures: dict[str, object] = {"events": args.events, "schema": schema}
    first = date(2025, 1, 1)
    try:
        with TemporaryDirectory() as folder:
            database = Database.from_url(scoped.render_as_string(hide_password=False))
            settings = Settings(
                issuer="http://localhost:8000",
                database_url=scoped.render_as_string(hide_password=False),
                data_dir=Path(folder),
                keys_dir=Path(folder) / "keys",
                secret_key="bench-secret-key-0123456789-abcdefghij",
                database_statement_timeout=3600,
            )
            if not args.schema:
                _seed_and_roll_up(args, database, settings, first, figures)
            runtime = Runtime.build(settings)
            last = first + timedelta(days=args.days - 1)
            options = {"adult_population": ADULTS}
            with runtime.db.transaction() as db:
                figures["dashboard_seconds"] = {
                    "30_days_by_day_all": timed(
                        lambda: indicators.report(
                            db, since=last - timedelta(days=29), until=last, **options
                        )
                    ),
                    "30_days_by_day_one_service": timed(
                        lambda: indicators.report(
                            db,
                            since=last - timedelta(days=29),
                            until=last,
                            client_id="service-03",
                        )
                    ),
                    "quarter_by_week_all": timed(
                        lambda: indicators.report(
                            db, since=last - timedelta(days=90), until=last, period="w", **options
                        )
                    ),
                    "year_by_month_all": timed(
                        lambda: indicators.report(
                            db, since=first, until=last, period="m", **options
                        )
                    ),
                    "30_days_eservices_side_by_side": timed(
                        lambda: eservices.compare(db, since=last - timedelta(days=29), until=last)
                    ),
                    "year_by_month_eservices_side_by_side": timed(
                        lambda: eservices.compare(db, since=first, until=last, period="m")
                    ),
                    "public_monthly_every_service": timed(
                        lambda: public.monthly(
                            db, min_cell=5, currency="AMD", today=last, months=12
                        )
                    ),
                }
                year = indicators.report(db, since=first, until=last, period="m", **options)
                figures["year_unique_citizens"] = (
                    year.total.values["citizens"] if year.total else None
                )
                assert year.kpis is not None
                figures["year_kpis"] = {
                    name: figure.value for name, figure in year.kpis.figures.items()
                }
            runtime.db.dispose()
            database.dispose()
    finally:
        if not (args.keep or args.schema):
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
