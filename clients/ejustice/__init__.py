"""e-justice: an example confidential e-service using `private_key_jwt`."""
