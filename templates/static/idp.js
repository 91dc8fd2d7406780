// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // "Show password" checkboxes: revealed only when scripts run.
  document.querySelectorAll("[data-show-password]").forEach(function (wrapper) {
    var box = wrapper.querySelector("input[type=checkbox]");
    var target = document.getElementById(wrapper.getAttribute("data-show-password"));
    if (!box || !target) { return; }
    wrapper.hidden = false;
    box.addEventListener("change", function () {
      target.type = box.checked ? "text" : "password";
    });
  });
  // Move focus to the error summary so screen readers announce it first.
  var summary = document.querySelector("[data-autofocus]");
  if (summary) { summary.focus(); }
  // Forms with a submit button are sent only once (double clicks).
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () {
      setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });
})();
