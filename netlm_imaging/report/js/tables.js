/* netlm-imaging tables: sort any table.sortable by a column (header buttons, again to reverse);
 * on the cohort index also filter by text and by flag. No dependencies. */
(function () {
  "use strict";
  function cellKey(tr, col) {
    var td = tr.children[col], v = td.getAttribute("data-sort");
    if (v === null) { v = td.textContent.trim(); }
    var num = parseFloat(v);
    return (v !== "" && !isNaN(num) && /^-?[0-9.eE+-]+$/.test(v)) ? num : v.toLowerCase();
  }
  function empty(x) { return x === "" || x === "–"; }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var tbody = table.tBodies[0], heads = table.querySelectorAll("th[data-col]");
    function sortBy(col, dir) {
      var rows = Array.prototype.slice.call(tbody.rows);
      rows.sort(function (a, b) {
        var x = cellKey(a, col), y = cellKey(b, col);
        if (empty(x) || empty(y)) { return empty(x) - empty(y); }  // blanks last
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      rows.forEach(function (r) { tbody.appendChild(r); });
      heads.forEach(function (th) {
        th.setAttribute("aria-sort", +th.getAttribute("data-col") === col ? (dir > 0 ? "ascending" : "descending") : "none");
      });
    }
    heads.forEach(function (th) {
      th.querySelector("button").addEventListener("click", function () {
        sortBy(+th.getAttribute("data-col"), th.getAttribute("aria-sort") === "ascending" ? -1 : 1);
      });
    });
  });

  var cohort = document.getElementById("cohort");
  if (!cohort) { return; }
  var filter = document.getElementById("filter"), flagged = document.getElementById("only-flagged");
  var count = document.getElementById("shown-count"), body = cohort.tBodies[0];
  function apply() {
    var q = (filter.value || "").toLowerCase().trim(), only = flagged && flagged.checked, n = 0;
    Array.prototype.forEach.call(body.rows, function (tr) {
      var show = (!q || tr.textContent.toLowerCase().indexOf(q) >= 0) && (!only || +tr.getAttribute("data-flags") > 0);
      tr.hidden = !show;
      if (show) { n++; }
    });
    if (count) { count.textContent = n + " of " + body.rows.length + " studies shown"; }
  }
  filter.addEventListener("input", apply);
  if (flagged) { flagged.addEventListener("change", apply); }
  apply();
  document.documentElement.setAttribute("data-index-ready", "1");
})();
