// Refreshes each [data-refresh] element from its URL every 2 s, and asks
// before submitting a form with data-confirm. Nothing else runs here.
"use strict";
document.querySelectorAll("[data-refresh]").forEach(function (el) {
  setInterval(function () {
    fetch(el.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { el.innerHTML = html; el.dataset.refreshed = String(Date.now()); })
      .catch(function () { el.classList.add("stale"); });
  }, 2000);
});
document.addEventListener("submit", function (e) {
  var msg = e.target.dataset && e.target.dataset.confirm;
  if (msg && !window.confirm(msg)) { e.preventDefault(); }
});
