// A code batch's page: follow the job's progress until it is done (or failed), then show the labels and the
// put-away form. Polls the HQ API's batch answer through the console (same origin, the session's cookie).
(function () {
  "use strict";
  var bar = document.getElementById("batch-progress");
  if (!bar) { return; }
  var status = document.getElementById("batch-status");
  var tag = document.getElementById("batch-status-tag");
  var count = document.getElementById("batch-count");
  var error = document.getElementById("batch-error");
  var done = document.getElementById("batch-done");
  var delay = 500;

  function show(b) {
    bar.max = b.quantity;
    bar.value = b.units_made;
    bar.dataset.status = b.status;
    tag.textContent = status.dataset[b.status] || b.status;
    tag.classList.toggle("approved", b.status === "done");
    count.textContent = b.units_made + "/" + b.quantity;
    error.textContent = b.error || "";
  }

  function finished(b) {
    if (b.status === "done" && done.hidden) {
      // The first codes and their trace links are drawn by the server: load the finished page once.
      window.location.reload();
    }
  }

  function tick() {
    fetch(bar.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (b) {
        show(b);
        if (b.status === "done" || b.status === "failed") { finished(b); return; }
        delay = Math.min(delay * 1.5, 3000);
        window.setTimeout(tick, delay);
      })
      .catch(function () { window.setTimeout(tick, 3000); });
  }

  if (bar.dataset.status !== "done" && bar.dataset.status !== "failed") { window.setTimeout(tick, 300); }
}());
