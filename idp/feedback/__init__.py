"""Citizens' ratings of the e-services: the e-services' rating API (the question asked after a
sign-in is `idp.services.feedback`)."""
