// Run first in <body>: marks the page as scripted (and able to run GOV.UK Frontend's
// components) before it is drawn, as GOV.UK's page template does with an inline script, which
// our Content-Security-Policy does not allow.
document.body.className +=
  " js-enabled" + ("noModule" in HTMLScriptElement.prototype ? " govuk-frontend-supported" : "");
