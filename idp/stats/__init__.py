"""Indicators of how the e-services are used, computed from the events (see `rules`)."""
