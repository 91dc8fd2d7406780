from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from idp.runtime import Runtime
from tests.signin.helpers import Browser, add_client


@pytest.fixture
def browser(client: TestClient, runtime: Runtime) -> Browser:
    add_client(runtime)
    return Browser(client, runtime)
