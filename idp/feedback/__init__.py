"""Citizens' ratings of the e-services: our question after a sign-in (`question`, the page) and
the e-services' rating API (`api`); what is asked and kept is `idp.services.feedback`."""
