/* netlm-imaging cohort index: sort by any column (header buttons), filter by text and by flag. */
(function () {
  "use strict";
  var table = document.getElementById("cohort");
  if (!table) { return; }
  var tbody = table.tBodies[0], heads = table.querySelectorAll("th[data-col]");
  var filter = document.getElementById("filter"), flagged = document.getElementById("only-flagged");
  var count = document.getElementById("shown-count");

  function cellKey(tr, col) {
    var td = tr.children[col], v = td.getAttribute("data-sort");
    if (v === null) { v = td.textContent.trim(); }
    var num = parseFloat(v);
    return (v !== "" && !isNaN(num) && /^-?[0-9.eE+-]+$/.test(v)) ? num : v.toLowerCase();
  }
  function sortBy(col, dir) {
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a, col), y = cellKey(b, col);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      if (x === "" || x === "–") { return 1; }
      if (y === "" || y === "–") { return -1; }
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    heads.forEach(function (th) {
      th.setAttribute("aria-sort", +th.getAttribute("data-col") === col ? (dir > 0 ? "ascending" : "descending") : "none");
    });
  }
  heads.forEach(function (th) {
    var btn = th.querySelector("button");
    btn.addEventListener("click", function () {
      var col = +th.getAttribute("data-col"), dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      sortBy(col, dir);
    });
  });
  function apply() {
    var q = (filter.value || "").toLowerCase().trim(), only = flagged && flagged.checked, n = 0;
    Array.prototype.forEach.call(tbody.rows, function (tr) {
      var show = (!q || tr.textContent.toLowerCase().indexOf(q) >= 0) && (!only || +tr.getAttribute("data-flags") > 0);
      tr.hidden = !show;
      if (show) { n++; }
    });
    if (count) { count.textContent = n + " of " + tbody.rows.length + " studies shown"; }
  }
  filter.addEventListener("input", apply);
  if (flagged) { flagged.addEventListener("change", apply); }
  apply();
  document.documentElement.setAttribute("data-index-ready", "1");
})();
