"""Example e-services (relying parties) that sign citizens in with the provider."""
