"""e-licensing: an example e-service using `client_secret_basic`."""
