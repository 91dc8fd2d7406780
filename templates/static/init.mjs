// GOV.UK Frontend's components (error summary focus, password reveal, service navigation on a
// phone, ...). Progressive enhancement only: every page works without scripts.
import { initAll } from "./govuk/govuk-frontend.min.js";

initAll();
