// The channel pages: the partner tree's expand/collapse (rows carry data-id and data-parent; a toggle button on a
// row with children hides or shows everything below it) and a confirm step on forms marked data-confirm
// (revoking an invite). Without this script every row shows and the form posts at once.
(function () {
  "use strict";

  function descendants(table, id) {
    var out = [], queue = [id];
    while (queue.length) {
      var parent = queue.shift();
      table.querySelectorAll('tr[data-parent="' + parent + '"]').forEach(function (row) {
        out.push(row);
        queue.push(row.getAttribute("data-id"));
      });
    }
    return out;
  }

  function initTree(table) {
    table.querySelectorAll("button.tree-toggle").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var row = button.closest("tr"), open = button.getAttribute("aria-expanded") === "true";
        descendants(table, row.getAttribute("data-id")).forEach(function (r) {
          r.hidden = open;
          var b = r.querySelector("button.tree-toggle");
          if (b) { b.setAttribute("aria-expanded", String(!open)); b.textContent = open ? "▸" : "▾"; }
        });
        button.setAttribute("aria-expanded", String(!open));
        button.textContent = open ? "▸" : "▾";
      });
    });
    document.querySelectorAll("[data-tree-all]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var open = link.getAttribute("data-tree-all") === "open";
        table.querySelectorAll("tr[data-parent]").forEach(function (r) { r.hidden = !open; });
        table.querySelectorAll("button.tree-toggle").forEach(function (b) {
          b.setAttribute("aria-expanded", String(open));
          b.textContent = open ? "▾" : "▸";
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-tree]").forEach(initTree);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    document.querySelectorAll("button[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
