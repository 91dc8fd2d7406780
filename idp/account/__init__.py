"""The citizen's own pages: profile, password, second factors, sessions, e-services, and where
their identity was used."""
