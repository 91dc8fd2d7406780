"""What a running provider holds: settings, the database, the keys, the secret box.

Built once per process by `Runtime.build(settings)`; the app, the CLI and tests share it.
Nothing here is state that matters after a restart: it is all read from the database and files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from idp.auth import passwords
from idp.auth.throttle import Throttle
from idp.config import Settings
from idp.db import Database
from idp.db.group_commit import GroupCommit
from idp.mail import Mailer, build_mailer
from idp.oauth.client_jwks import ClientKeySets
from idp.oauth.keys import KeyRing
from idp.security import SecretBox, master_key


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keyring: KeyRing
    secrets: SecretBox
    mailer: Mailer
    throttle: Throttle
    client_jwks: ClientKeySets  # e-services' key sets fetched from their jwks_uri
    group_commit: GroupCommit = field(init=False)  # the process's writer of token rows

    def __post_init__(self) -> None:
        self.group_commit = GroupCommit(
            self.db,
            max_rows=self.settings.group_commit_max_rows,
            wait=self.settings.group_commit_wait_ms / 1000,
        )

    @classmethod
    def build(cls, settings: Settings, *, db: Database | None = None) -> Runtime:
        passwords.configure(settings.password_hash_memory_kib, settings.password_hash_iterations)
        database = db or Database.from_url(
            settings.effective_database_url,
            connect_timeout=settings.database_connect_timeout,
            statement_timeout=settings.database_statement_timeout,
            pool_size=settings.database_pool_size,
            sqlite_synchronous=settings.database_sqlite_synchronous,
        )
        keyring = KeyRing(settings.keys_dir, max_token_lifetime=settings.max_signed_token_lifetime)
        return cls(
            settings,
            database,
            keyring,
            SecretBox(master_key(settings)),
            build_mailer(settings),
            Throttle.from_settings(settings),
            ClientKeySets(settings.client_jwks_cache_entries),
        )
