// The signed-out page: once the e-services' front-channel logout frames have loaded (or after
// a few seconds at most), continue to the e-service. Without scripts, the link does the same.
(function () {
  "use strict";
  var link = document.querySelector("[data-continue]");
  if (!link) { return; }
  var frames = document.querySelectorAll("iframe[data-frontchannel]");
  var waiting = frames.length;
  var gone = false;
  function go() {
    if (!gone) { gone = true; window.location.assign(link.href); }
  }
  frames.forEach(function (frame) {
    frame.addEventListener("load", function () {
      waiting -= 1;
      if (waiting <= 0) { go(); }
    });
  });
  setTimeout(go, 4000);
})();
