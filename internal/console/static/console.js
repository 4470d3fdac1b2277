// Refreshes each [data-refresh] element from its URL every 2 s, and asks
// before submitting a form with data-confirm. Nothing else runs here.
"use strict";
// A page shown again from the back-forward cache may offer actions on what
// is gone (a dead letter just deleted): fetch it again instead.
window.addEventListener("pageshow", function (e) { if (e.persisted) { location.reload(); } });
document.querySelectorAll("[data-refresh]").forEach(function (el) {
  var note = document.createElement("p");
  note.className = "banner";
  note.id = "console-unreachable";
  note.hidden = true;
  el.parentNode.insertBefore(note, el);
  var paused = document.createElement("p");
  paused.id = "refresh-paused";
  paused.hidden = true;
  paused.textContent = "Refresh paused while the keyboard is on a link or button below; it resumes when the focus leaves.";
  el.parentNode.insertBefore(paused, el);
  var session = function (root) {
    var s = root.querySelector("[data-session]");
    return s ? s.dataset.session : "";
  };
  var mine = session(el);
  setInterval(function () {
    // Replacing the element would take the keyboard focus from a link or
    // button inside it: wait until the focus leaves.
    var a = document.activeElement;
    paused.hidden = !(a && a !== document.body && el.contains(a));
    if (!paused.hidden) { return; }
    fetch(el.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = document.createElement("div");
        next.innerHTML = html;
        if (session(next) !== mine) { location.reload(); return; } // signed in or out meanwhile (a restart ends sessions)
        el.innerHTML = html;
        el.dataset.refreshed = String(Date.now());
        el.classList.remove("stale");
        note.hidden = true;
      })
      .catch(function () {
        if (!el.classList.contains("stale")) {
          note.textContent = "The console did not answer at " + new Date().toISOString().replace(/\.\d+Z$/, "Z") +
            ": the figures below are from before then (retrying every 2 s).";
        }
        el.classList.add("stale");
        note.hidden = false;
      });
  }, 2000);
});
document.addEventListener("submit", function (e) {
  var msg = e.target.dataset && e.target.dataset.confirm;
  if (msg && !window.confirm(msg)) { e.preventDefault(); }
});
