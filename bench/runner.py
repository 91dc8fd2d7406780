"""`bench/run`: start the provider production-like, load it, print the figures.

Steps: a fresh PostgreSQL database; the schema, signing keys, e-services and citizens; the
provider with `--workers` processes pinned to `--server-cpus`; node-oidc-provider measured in the
same run with the same scenarios (`../shared/peers/compare`); our other scenarios with wrk
(`bench/wrk/*.lua`) pinned to `--load-cpu`; complete sign-ins; the latency at half of the peak
rate; then the same figures again after seeding `--citizens` and `--tokens` (`bench/seed.py`).
Only 127.0.0.1 is ever contacted. The database is dropped at the end (`--keep-db` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from bench import signin

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / ".." / "shared" / "peers"
LUA = REPO / "bench" / "wrk"
PY = sys.executable
PEER_SCENARIOS = ["discovery", "jwks", "cc", "cc-es256", "cc-rs256", "introspect"]
ARGON2_PROBE = """
import sys, time
from idp.auth.passwords import HASHER, hash_password
stored = hash_password("probe passphrase 123")
n, end = 0, time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    HASHER.verify(stored, "probe passphrase 123")
    n += 1
print(n / float(sys.argv[1]))
"""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
        self.base = f"http://127.0.0.1:{args.port}"
        self.db_url = f"{args.postgres.rstrip('/')}/{args.database}"
        self.server: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        self.env.update(
            {
                # Production settings, except that the issuer is the plain-http loopback
                # listener (development mode allows exactly that): JSON logs at INFO, a secret
                # key, PostgreSQL, the same workers. See docs/performance.md.
                "IDP_ENVIRONMENT": "development",
                "IDP_ISSUER": self.base,
                "IDP_LOG_FORMAT": "json",
                "IDP_DATABASE_URL": self.db_url,
                "IDP_SECRET_KEY": secrets.token_urlsafe(32),
                "IDP_KEYS_DIR": str(self.tmp / "keys"),
                "IDP_DATA_DIR": str(self.tmp / "data"),
                "IDP_MAIL_BACKEND": "console",
                "IDP_LOG_LEVEL": "INFO",
                "IDP_DATABASE_POOL_SIZE": str(args.pool_size),
                "PYTHONPATH": str(REPO),
            }
        )
        self.env.pop("IDP_CONFIG_FILE", None)
        (self.tmp / "keys").mkdir(mode=0o700)
        self.setup: dict[str, Any] = {}
        self.users: list[dict[str, str]] = []
        self.results: dict[str, dict[str, Any]] = {}

    # Processes -------------------------------------------------------------------------------

    def idp(self, *argv: str) -> str:
        done = subprocess.run(
            [str(Path(PY).parent / "idp"), *argv],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"bench: idp {' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self) -> None:
        with psycopg.connect(f"{self.a.postgres}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.a.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.a.database}"')
        self.idp("db", "upgrade")
        for alg in ("RS256", "ES256"):
            self.idp("keys", "generate", "--alg", alg)

    def drop_database(self) -> None:
        if self.a.keep_db:
            log(f"database kept: {self.db_url}")
            return
        with psycopg.connect(f"{self.a.postgres}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.a.database}" WITH (FORCE)')

    def create_fixtures(self) -> None:
        path = self.tmp / "fixtures.json"
        subprocess.run(
            [PY, "-m", "bench.fixtures", str(self.a.bench_citizens), str(path)],
            env=self.env,
            capture_output=True,
            check=True,
            cwd=REPO,
        )
        self.setup = json.loads(path.read_text())
        self.users = list(self.setup["users"])

    def start_server(self) -> None:
        cmd = [
            "taskset",
            "-c",
            self.a.server_cpus,
            str(Path(PY).parent / "idp"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.a.port),
            "--workers",
            str(self.a.workers),
        ]
        logfile = open(self.tmp / "server.log", "wb")  # noqa: SIM115 (lives as long as the server)
        self.server = subprocess.Popen(cmd, env=self.env, stdout=logfile, stderr=logfile)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/health/ready", timeout=2) as answer:
                    if answer.status == 200:
                        time.sleep(0.5 * self.a.workers)  # let every worker finish starting
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"bench: the provider did not start; see {self.tmp / 'server.log'}")

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    def worker_pids(self) -> list[int]:
        assert self.server is not None
        children = Path(f"/proc/{self.server.pid}/task/{self.server.pid}/children")
        kids = [int(p) for p in children.read_text().split()] if children.exists() else []
        return kids if self.a.workers > 1 and kids else [self.server.pid]

    def rss_mb(self) -> float:
        worst = 0.0
        for pid in self.worker_pids():
            status = Path(f"/proc/{pid}/status").read_text()
            found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
            if found:
                worst = max(worst, int(found.group(1)) / 1024)
        return worst

    def argon2_bound(self) -> float:
        done = subprocess.run(
            ["taskset", "-c", self.a.server_cpus.split(",")[0], PY, "-c", ARGON2_PROBE, "3"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return float(done.stdout.strip())

    # Load ------------------------------------------------------------------------------------

    def wrk(
        self,
        script: str,
        path: str,
        env: dict[str, str],
        seconds: float,
        *,
        connections: int | None = None,
        warmup: bool = True,
    ) -> dict[str, Any]:
        connections = connections or self.a.connections
        full = dict(os.environ)
        full.update(env)
        full["BENCH_LUA_DIR"] = str(LUA)
        full["BENCH_THREADS"] = "1"
        cmd = ["taskset", "-c", str(self.a.load_cpu), "wrk", "-t", "1", "-c", str(connections)]
        cmd += ["--timeout", "10s", "--latency", "-s", str(LUA / script), self.base + path]
        if warmup and self.a.warmup > 0:
            subprocess.run([*cmd, "-d", f"{self.a.warmup}s"], env=full, capture_output=True)
        done = subprocess.run(
            [*cmd, "-d", f"{int(seconds)}s"], env=full, capture_output=True, text=True
        )
        found = re.search(r"^BENCH_RESULT (.*)$", done.stdout, re.M)
        if not found:
            raise SystemExit(f"bench: wrk {script} gave no result:\n{done.stdout}{done.stderr}")
        r = {k: int(v) for k, v in (kv.split("=") for kv in found.group(1).split())}
        seconds_run = r["duration_us"] / 1e6
        return {
            "rps": r["ok"] / seconds_run,
            "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000,
            "requests": r["requests"],
            "bad": r["bad"] + r["socket_errors"],
            "exhausted": r["exhausted"],
            "connections": connections,
        }

    def peer_scenarios(self, label: str, with_peer: bool) -> None:
        """discovery, jwks, client credentials (opaque, ES256, RS256), introspection."""
        clients = self.setup["clients"]
        creds = [
            "--client-id",
            "bench-opaque",
            "--client-secret",
            clients["bench-opaque"],
        ]
        es = ["bench-es256", clients["bench-es256"]]
        rs = ["bench-rs256", clients["bench-rs256"]]
        out = self.tmp / f"peers-{label}.json"
        common = [
            "--duration", str(self.a.duration), "--warmup", str(self.a.warmup),
            "--connections", str(self.a.connections), "--threads", "1", "--json", str(out),
        ]  # fmt: skip
        if with_peer:
            cmd = [
                str(PEERS / "compare"), "--ours", self.base,
                "--ours-client-id", creds[1], "--ours-client-secret", creds[3],
                "--ours-es256-client-id", es[0], "--ours-es256-client-secret", es[1],
                "--ours-rs256-client-id", rs[0], "--ours-rs256-client-secret", rs[1],
                "--peer-cpu", self.a.server_cpus.split(",")[0], "--load-cpu", str(self.a.load_cpu),
                *common,
            ]  # fmt: skip
            if self.a.ours_first:
                cmd.append("--ours-first")
        else:
            cmd = [
                str(PEERS / "oidc-load"), "--base", self.base, "--label", "ours", *creds,
                "--es256-client-id", es[0], "--es256-client-secret", es[1],
                "--rs256-client-id", rs[0], "--rs256-client-secret", rs[1],
                "--cpu", str(self.a.load_cpu), "--scenarios", ",".join(PEER_SCENARIOS),
                *common,
            ]  # fmt: skip
        subprocess.run(cmd, check=False, stdout=sys.stderr)
        if not out.exists():
            raise SystemExit("bench: the peer harness wrote no results")
        doc = json.loads(out.read_text())
        ours = doc["ours"]["results"] if with_peer else doc["results"]
        peer = {r["scenario"]: r for r in doc["peer"]["results"]} if with_peer else {}
        for row in ours:
            name = row["scenario"]
            entry = self.results.setdefault(name, {})
            entry[label] = (
                {"error": row["error"]}
                if row.get("error")
                else {
                    "rps": row["rps"],
                    "p50_ms": row["p50_ms"],
                    "p99_ms": row["p99_ms"],
                    "bad": row["non2xx"] + row["errors"],
                }
            )
            if name in peer and not peer[name].get("error"):
                entry["peer"] = {k: peer[name][k] for k in ("rps", "p50_ms", "p99_ms")}

    def own_scenarios(self, label: str) -> None:
        """authorize (with a session), code redemption, refresh, userinfo, sign-ins."""
        a = self.a
        clients = self.setup["clients"]
        web = signin.basic_header("bench-web", clients["bench-web"])
        cookie, _tokens = signin.session_for(self.base, self.setup, self.users.pop())
        codes = self.tmp / f"codes-{label}"
        issued = self.tmp / f"issued-{label}"
        run = a.warmup + a.duration
        self.record(
            label,
            "authorize",
            self.wrk(
                "authorize.lua",
                "/",
                {
                    "BENCH_PATH": signin.authorize_path(self.setup["redirect_uri"]),
                    "BENCH_COOKIE": cookie,
                    "BENCH_OUT": str(codes),
                },
                run * 3,
                warmup=False,
            ),
        )
        self.record(
            label,
            "code",
            self.wrk(
                "code.lua",
                "/token",
                {
                    "BENCH_IN": f"{codes}.0",
                    "BENCH_OUT": str(issued),
                    "BENCH_AUTH": web,
                    "BENCH_REDIRECT": self.setup["redirect_uri"],
                    "BENCH_VERIFIER": signin.VERIFIER,
                },
                a.duration,
                warmup=False,  # single-use codes: a warm-up run would use them first
            ),
        )
        tokens_file = str(issued) + ".0"
        lines = Path(tokens_file).read_text().splitlines() if Path(tokens_file).exists() else []
        peak_file, paced_file = self.tmp / f"refresh-{label}", self.tmp / f"paced-{label}"
        peak_file.write_text("\n".join(lines[::2]) + "\n")
        paced_file.write_text("\n".join(lines[1::2]) + "\n")
        # userinfo first: a refresh token used twice revokes its grant (and its access tokens)
        self.record(
            label,
            "userinfo",
            self.wrk("userinfo.lua", "/userinfo", {"BENCH_IN": tokens_file}, a.duration),
        )
        self.record(
            label,
            "refresh",
            self.wrk(
                "refresh.lua",
                "/token",
                {"BENCH_IN": str(peak_file), "BENCH_AUTH": web},
                a.duration,
                warmup=False,  # a refresh token presented twice revokes its grant
            ),
        )
        # Paced: the latency at half of the peak rate just measured.
        es = signin.basic_header("bench-es256", clients["bench-es256"])
        paced = {
            "cc-es256": (
                "request.lua",
                "/token",
                {
                    "BENCH_METHOD": "POST",
                    "BENCH_AUTH": es,
                    "BENCH_BODY": "grant_type=client_credentials",
                    "BENCH_EXPECT": '"access_token"',
                },
            ),
            "userinfo": ("userinfo.lua", "/userinfo", {"BENCH_IN": tokens_file}),
            "refresh": ("refresh.lua", "/token", {"BENCH_IN": str(paced_file), "BENCH_AUTH": web}),
        }
        for name, (script, path, env) in paced.items():
            peak = self.results.get(name, {}).get(label, {}).get("rps")
            if not peak:
                continue
            target = peak / 2
            conns = 8
            delay = max(0.0, conns * 1000 / target - 1000 / peak)
            result = self.wrk(
                script,
                path,
                {**env, "BENCH_DELAY_MS": f"{delay:.3f}"},
                a.duration,
                connections=conns,
                warmup=name != "refresh",
            )
            result["target_rps"] = target
            self.results[name][label]["half"] = result
        # Complete sign-ins, each by a citizen not used before in this run.
        share = self.users[: len(self.users) // (2 if label == "empty" else 1)]
        del self.users[: len(share)]
        outcome = signin.run_load(self.base, self.setup, share, a.signin_concurrency, a.duration)
        self.results.setdefault("sign-in", {})[label] = {
            "rps": outcome.rate,
            "p50_ms": outcome.percentile(50),
            "p99_ms": outcome.percentile(99),
            "bad": outcome.failed,
            "ran_out": not share or len(share) == outcome.completed + outcome.failed,
            "first_error": outcome.first_error,
        }
        self.results.setdefault("rss", {})[label] = {"mb": self.rss_mb()}

    def record(self, label: str, name: str, result: dict[str, Any]) -> None:
        self.results.setdefault(name, {})[label] = result

    def seed_big(self) -> None:
        log(f"seeding {self.a.citizens} citizens and {self.a.tokens} tokens")
        subprocess.run(
            [
                PY,
                "-m",
                "bench.seed",
                self.db_url,
                "--citizens",
                str(self.a.citizens),
                "--tokens",
                str(self.a.tokens),
            ],
            env=self.env,
            check=True,
            cwd=REPO,
        )

    # Report ----------------------------------------------------------------------------------

    def report(self, argon2: float) -> None:
        a = self.a
        big = "big" in next(iter(self.results.values()), {}) or any(
            "big" in v for v in self.results.values()
        )
        print()
        print(
            f"idp bench: {a.workers} worker(s) on cpu {a.server_cpus}, wrk on cpu {a.load_cpu}, "
            f"{a.connections} connections, {a.duration}s (+{a.warmup}s warm-up) per scenario"
        )
        head = f"{'scenario':<11} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'bad':>5}"
        head += f" {'peer r/s':>9} {'ours/peer':>9}"
        if big:
            head += f" {'big r/s':>8} {'big p50':>8} {'big p99':>8} {'p50 big/empty':>14}"
        print(head)
        order = [*PEER_SCENARIOS, "authorize", "code", "refresh", "userinfo", "sign-in"]
        for name in order:
            row = self.results.get(name, {})
            empty = row.get("empty", {})
            if "rps" not in empty:
                print(f"{name:<11} FAILED: {empty.get('error', 'not run')}")
                continue
            line = (
                f"{name:<11} {empty['rps']:>8.1f} {empty['p50_ms']:>7.2f} {empty['p99_ms']:>7.2f}"
            )
            line += f" {empty.get('bad', 0):>5}"
            peer = row.get("peer")
            if peer:
                line += f" {peer['rps']:>9.1f} {empty['rps'] / peer['rps']:>8.2f}x"
            else:
                line += f" {'':>9} {'':>9}"
            other = row.get("big", {})
            if big and "rps" in other:
                ratio = other["p50_ms"] / empty["p50_ms"] if empty["p50_ms"] else 0
                line += f" {other['rps']:>8.1f} {other['p50_ms']:>8.2f} {other['p99_ms']:>8.2f}"
                line += f" {ratio:>13.2f}x"
            print(line)
        print()
        print("latency at half of the peak rate (8 connections, paced):")
        for name in ("cc-es256", "refresh", "userinfo"):
            for label in ("empty", "big"):
                half = self.results.get(name, {}).get(label, {}).get("half")
                if half:
                    print(
                        f"  {name:<9} {label:<5} target {half['target_rps']:7.1f}/s, got "
                        f"{half['rps']:7.1f}/s: p50 {half['p50_ms']:.2f} ms, "
                        f"p99 {half['p99_ms']:.2f} ms, bad {half['bad']}"
                    )
        sign = self.results.get("sign-in", {}).get("empty", {})
        print()
        print(
            f"argon2id bound (m=47104 KiB, t=2, p=1; one core): {argon2:.1f} hashes/s; "
            f"sign-ins {sign.get('rps', 0):.1f}/s = {100 * sign.get('rps', 0) / argon2:.0f} %"
            f" of the bound (concurrency {a.signin_concurrency})"
        )
        for label in ("empty", "big"):
            s = self.results.get("sign-in", {}).get(label, {})
            if s.get("first_error"):
                print(f"  sign-in {label}: first error: {s['first_error']}")
            if s.get("ran_out"):
                print(f"  sign-in {label}: ran out of fresh citizens (raise --bench-citizens)")
        rss = self.results.get("rss", {})
        print("RSS per worker (max): " + ", ".join(f"{k} {v['mb']:.0f} MB" for k, v in rss.items()))
        self.targets(argon2)

    def targets(self, argon2: float) -> None:
        r = self.results

        def get(name: str, label: str = "empty") -> dict[str, Any]:
            return r.get(name, {}).get(label, {})

        checks: list[tuple[str, bool | None, str]] = []
        es, peer_es = get("cc-es256"), r.get("cc-es256", {}).get("peer")
        if es.get("rps") and peer_es:
            ratio = es["rps"] / peer_es["rps"]
            checks.append(("cc-es256 >= peer per core", ratio >= 1, f"{ratio:.2f}x"))
        refresh = get("refresh").get("rps", 0)
        checks.append(("refresh >= 1000/s", refresh >= 1000, f"{refresh:.0f}/s"))
        sign = get("sign-in").get("rps", 0)
        checks.append(
            ("sign-ins >= 90 % of argon2id bound", sign >= 0.9 * argon2, f"{sign / argon2:.0%}")
        )
        halves = [
            get(n).get("half", {}).get("p99_ms")
            for n in ("cc-es256", "refresh", "userinfo")
            if get(n).get("half")
        ]
        worst = max((h for h in halves if h is not None), default=None)
        checks.append(
            ("p99 < 50 ms at half of peak", None if worst is None else worst < 50, f"{worst} ms")
        )
        for name in ("cc-es256", "code", "refresh", "userinfo", "introspect"):
            empty, big = get(name), get(name, "big")
            if empty.get("p50_ms") and big.get("p50_ms"):
                ratio = big["p50_ms"] / empty["p50_ms"]
                rate = empty["rps"] / big["rps"] if big.get("rps") else 0
                checks.append(
                    (
                        f"{name} latency big/empty <= 1.2",
                        ratio <= 1.2,
                        f"p50 {ratio:.2f}x, rate empty/big {rate:.2f}x",
                    )
                )
        rss = max((v["mb"] for v in r.get("rss", {}).values()), default=0)
        checks.append(("RSS < 150 MB per worker", rss < 150, f"{rss:.0f} MB"))
        print()
        print("targets:")
        for what, ok, detail in checks:
            mark = "n/a " if ok is None else ("PASS" if ok else "FAIL")
            print(f"  {mark}  {what:<36} {detail}")

    # Run -------------------------------------------------------------------------------------

    def run(self) -> int:
        for tool in ("wrk", "taskset"):
            if not shutil.which(tool):
                raise SystemExit(f"bench: {tool} not found (apt-get install -y {tool})")
        try:
            log(f"fresh database {self.db_url}")
            self.create_database()
            self.create_fixtures()
            argon2 = self.argon2_bound()
            self.start_server()
            log("scenarios on the empty database")
            self.peer_scenarios("empty", with_peer=not self.a.no_peer)
            self.own_scenarios("empty")
            if self.a.citizens or self.a.tokens:
                self.stop_server()
                self.seed_big()
                self.start_server()
                log("scenarios on the big database")
                self.peer_scenarios("big", with_peer=False)
                self.own_scenarios("big")
            self.report(argon2)
            if self.a.json:
                Path(self.a.json).write_text(
                    json.dumps({"argon2_per_s": argon2, "results": self.results}, indent=2)
                )
        except BaseException:
            log(f"failed; files kept in {self.tmp}: {json.dumps(self.results)[:2000]}")
            raise
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            self.stop_server()
            self.drop_database()
        return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=1, help="provider worker processes (1)")
    p.add_argument("--server-cpus", default="0", help="taskset cpu list of the provider (0)")
    p.add_argument("--load-cpu", type=int, default=1, help="cpu of wrk and the clients (1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--duration", type=int, default=5, help="measured seconds per scenario")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured seconds before each")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--signin-concurrency", type=int, default=4)
    p.add_argument("--bench-citizens", type=int, default=1500, help="citizens who sign in")
    p.add_argument("--citizens", type=int, default=1_000_000, help="seeded for the big run")
    p.add_argument("--tokens", type=int, default=10_000_000, help="seeded for the big run")
    p.add_argument("--no-scale", action="store_true", help="skip the big-database run")
    p.add_argument("--no-peer", action="store_true", help="skip node-oidc-provider")
    p.add_argument("--ours-first", action="store_true", help="measure ours before the peer")
    p.add_argument("--pool-size", type=int, default=10, help="database connections per worker")
    p.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--database", default="idp_bench")
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--json", help="write every figure to this file")
    args = p.parse_args(argv)
    if args.no_scale:
        args.citizens = args.tokens = 0
    if "127.0.0.1" not in args.postgres and "localhost" not in args.postgres:
        p.error("--postgres must be on 127.0.0.1")
    return args


def main() -> None:
    sys.exit(Bench(parse()).run())


if __name__ == "__main__":
    main()
