// The shipping desk: a handheld scanner types a code and Enter into the scan field, which keeps the focus.
// Each scan is checked at once by the console (nothing is written); the page keeps the codes accepted so far and
// sends them with the next scan and, on 确认发货, with the form. A refusal plays a sound and says why.
(function () {
  "use strict";
  var desk = document.getElementById("ship");
  if (!desk) { return; }
  var input = document.getElementById("scan-input");
  var result = document.getElementById("scan-result");
  var list = document.getElementById("scanned-list");
  var codes = document.getElementById("ship-codes");
  var count = document.getElementById("scan-count");
  var sounds = { ok: new Audio(desk.dataset.okSound), bad: new Audio(desk.dataset.badSound) };
  var scanned = [];
  Array.prototype.forEach.call(codes.querySelectorAll("input"), function (el) { scanned.push(el.value); });
  var queue = Promise.resolve();

  function refocus() {
    if (document.activeElement !== input) { input.focus(); }
  }

  function play(name) {
    try {
      var sound = sounds[name];
      sound.currentTime = 0;
      var playing = sound.play();
      if (playing && playing.catch) { playing.catch(function () { /* no audio device: the sentence stays */ }); }
    } catch (e) { /* the sentence is shown whatever the sound does */ }
  }

  function show(kind, text) {
    result.className = "scan-result " + kind;
    result.textContent = text;
  }

  function render(answer) {
    scanned = answer.scanned || scanned;
    codes.textContent = "";
    list.textContent = "";
    scanned.forEach(function (serial) {
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "case_code";
      hidden.value = serial;
      codes.appendChild(hidden);
    });
    (answer.needs || []).forEach(function (need) {
      var row = document.querySelector('#needs tr[data-sku="' + need.sku_id + '"]');
      if (!row) { return; }
      row.querySelector(".scanned").textContent = need.scanned;
      row.querySelector(".missing").textContent = need.missing;
      row.className = need.missing ? "" : "done";
    });
    count.textContent = scanned.length + " 个码";
  }

  function addToList(answer) {
    var item = document.createElement("li");
    item.className = "mono";
    item.textContent = answer.serial_grouped + "　" + answer.sku_name + " " + answer.units + answer.unit;
    list.appendChild(item);
  }

  var accepted = [];

  function check(code) {
    return fetch(desk.dataset.scanUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": desk.dataset.csrf },
      body: JSON.stringify({ code: code, scanned: scanned })
    }).then(function (resp) {
      return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
    }).then(function (answer) {
      if (!answer.ok) {
        play("bad");
        show("bad", (answer.body.error && answer.body.error.message) || "扫码没有成功，请再扫一次");
        return;
      }
      var body = answer.body;
      if (body.accepted) { accepted.push(body); }
      render(body);
      accepted.forEach(addToList);
      play(body.accepted ? "ok" : "bad");
      show(body.accepted ? "ok" : "bad", body.message);
    }, function () {
      play("bad");
      show("bad", "网络不通，这一码没有记上，请再扫一次");
    }).then(refocus);
  }

  input.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") { return; }
    event.preventDefault();
    var code = input.value.trim();
    input.value = "";
    if (!code) { return; }
    show("", "正在核对 " + code + " …");
    queue = queue.then(function () { return check(code); });
  });
  // Keep the focus in the scan field: after a click on the page (not on a button or a link), when the window
  // comes back, and when the field loses it to nothing.
  input.addEventListener("blur", function (event) {
    if (!event.relatedTarget) { setTimeout(refocus, 0); }
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest("a, button, select, textarea, input")) { refocus(); }
  });
  window.addEventListener("focus", refocus);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { refocus(); } });
  refocus();
}());
