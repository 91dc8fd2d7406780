"""What both example e-services share: settings, the session store, token checks, the pages."""

import warnings

# Authlib announces a future change of its HTTP client on import; nothing to act on here.
# Importing its module of warnings first: it puts an "always" filter for them at the front,
# which would otherwise come before this one.
import authlib.deprecate  # noqa: F401

warnings.filterwarnings("ignore", message="The httpx module is deprecated")
