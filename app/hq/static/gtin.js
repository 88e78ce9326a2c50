// The GTIN field checks its GS1 check digit as it is typed (the server checks again when the form is sent).
(function () {
  "use strict";
  function checkDigit(body) {
    var total = 0;
    for (var i = 0; i < body.length; i += 1) {
      var d = body.charCodeAt(body.length - 1 - i) - 48;
      total += d * (i % 2 === 0 ? 3 : 1);
    }
    return (10 - (total % 10)) % 10;
  }
  function problem(value) {
    if (!/^[0-9]+$/.test(value) || [8, 12, 13, 14].indexOf(value.length) < 0) {
      return "条码要是 8、12、13 或 14 位数字（现在 " + value.length + " 位）";
    }
    var want = checkDigit(value.slice(0, -1));
    if (want !== Number(value.slice(-1))) {
      return "校验位不对：按前面的数字，最后一位应是 " + want + "，这里是 " + value.slice(-1);
    }
    return "";
  }
  Array.prototype.forEach.call(document.querySelectorAll("input[data-gtin-check]"), function (input) {
    var out = document.getElementById(input.id + "-check");
    var label = input.closest("label");
    var hint = out.textContent;
    function show() {
      var value = input.value.trim();
      if (!value) {
        out.textContent = hint;
        out.className = "gtin-check hint";
        input.removeAttribute("aria-invalid");
        if (label) { label.classList.remove("invalid"); }
        return;
      }
      var why = problem(value);
      out.textContent = why || "✓ 校验位正确";
      out.className = "gtin-check " + (why ? "bad" : "ok");
      input.setAttribute("aria-invalid", why ? "true" : "false");
      if (label) { label.classList.toggle("invalid", !!why); }
    }
    input.addEventListener("input", show);
    if (input.value) { show(); }
  });
}());
