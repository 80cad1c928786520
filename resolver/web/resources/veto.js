/* Veto web console: the query log's live tail. The page works without it: this script only
   adds the rows that arrive after the page was drawn, polling /log.json every 2 s. */
(function () {
  "use strict";
  var tail = document.getElementById("tail");
  var table = document.getElementById("log");
  if (!tail || !table || !window.fetch) {
    return;
  }
  var after = tail.getAttribute("data-after") || "0";
  var query = tail.getAttribute("data-query") || "";
  var state = document.getElementById("tail-state");
  var body = table.tBodies[0];
  var columns = ["time", "who", "mac", "vendor", "group", "qname", "qtype", "action", "list",
    "rcode"];

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined || text === "" ? "-" : String(text);
    if (cls) {
      td.className = cls;
    }
    row.appendChild(td);
  }

  function add(r) {
    var tr = document.createElement("tr");
    tr.className = r.blocked ? "blocked new" : "new";
    columns.forEach(function (c) {
      var v = r[c];
      if (c === "who") {
        v = r.device ? r.device + " (" + (r.client || "-") + ")" : r.client;
      }
      cell(tr, v, c === "time" ? "time" : c === "qname" ? "name" : "");
    });
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > 500) {
      body.deleteRow(body.rows.length - 1);
    }
  }

  function poll() {
    var url = "/log.json?after=" + encodeURIComponent(after) + (query ? "&" + query : "");
    fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (resp) {
      if (!resp.ok) {
        throw new Error("HTTP " + resp.status);
      }
      return resp.json();
    }).then(function (rows) {
      rows.forEach(function (r) {
        add(r);
        after = String(r.id);
      });
      if (state) {
        state.textContent = "live: updated " + new Date().toLocaleTimeString();
      }
    }).catch(function (e) {
      if (state) {
        state.textContent = "live tail paused: " + e.message;
      }
    }).then(function () {
      window.setTimeout(poll, 2000);
    });
  }

  window.setTimeout(poll, 2000);
}());
