// otel-diag console: live updates without a reload.
// Every few seconds the page fetches itself and swaps each region marked data-live for the
// same region of the fresh page. The fresh page is parsed with DOMParser (its scripts never
// run) and the server escaped every value in it; no data is written with innerHTML.
(function () {
  "use strict";
  var PERIOD_MS = 5000;
  var status = null;

  function say(text) {
    if (status) { status.textContent = text; }
  }

  function refresh() {
    if (document.hidden || !document.querySelector("[data-live]")) { return; }
    fetch(window.location.href, { headers: { "X-Console-Poll": "1" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401 || response.redirected) { window.location.assign("/login"); return null; }
        if (!response.ok) { say("live updates paused (server answered " + response.status + ")"); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (region) {
          var next = region.id ? fresh.getElementById(region.id) : null;
          if (!next || next.isEqualNode(region)) { return; }
          // keep a keyboard user's place: the same link of the fresh region gets the focus
          var active = document.activeElement;
          var href = region.contains(active) && active.getAttribute ? active.getAttribute("href") : null;
          region.replaceWith(document.adoptNode(next));
          if (href) {
            var same = Array.prototype.find.call(next.querySelectorAll("a[href]"), function (a) {
              return a.getAttribute("href") === href;
            });
            if (same) { same.focus(); }
          }
        });
        say("live: updated " + new Date().toLocaleTimeString());
      })
      .catch(function () { say("live updates paused (server unreachable)"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    status = document.getElementById("live-status");
    if (!document.querySelector("[data-live]")) { say(""); return; }
    window.setInterval(refresh, PERIOD_MS);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(); } });
  });
}());
