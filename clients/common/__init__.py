"""What both example e-services share: settings, the session store, token checks, the pages."""

import warnings

# Authlib announces a future change of its HTTP client on import; nothing to act on here.
warnings.filterwarnings("ignore", message="The httpx module is deprecated")
