"""National digital-identity provider: an OpenID Connect provider for citizens and e-services."""

__version__ = "0.1.0.dev0"
