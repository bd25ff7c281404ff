// redis-harness console: live updates. The server renders every fragment; this script
// only subscribes to server-sent events and swaps or appends them. No framework.
(function () {
  "use strict";
  var body = document.body;
  // Every change of the nodes answering as master, with the time the page showed it
  // (ms since the Unix epoch): what the role-change latency is measured against.
  window.consoleLog = [];

  function live(es) {
    es.onopen = function () { body.dataset.sse = "open"; };
    es.onerror = function () { body.dataset.sse = "reconnecting"; };
  }

  var topo = document.getElementById("topology");
  if (topo) {
    var shown = topo.firstElementChild ? topo.firstElementChild.dataset.masters : undefined;
    var es = new EventSource("/sse/topology");
    live(es);
    es.addEventListener("topology", function (e) {
      topo.innerHTML = e.data;
      var frag = topo.firstElementChild;
      var masters = frag ? frag.dataset.masters : "";
      if (masters !== shown) {
        shown = masters;
        window.consoleLog.push({ masters: masters, t: Date.now() });
        body.dataset.masters = masters;
      }
      body.dataset.updatedAt = String(Date.now());
    });
  }

  var rows = document.getElementById("events-body");
  if (rows) {
    var box = document.getElementById("events-scroll");
    var es2 = new EventSource("/sse/events?after=" + (rows.dataset.lastId || "0"));
    live(es2);
    es2.addEventListener("ev", function (e) {
      var stick = box && box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      rows.insertAdjacentHTML("beforeend", e.data);
      while (rows.children.length > 2000) rows.removeChild(rows.firstElementChild);
      if (box && stick) box.scrollTop = box.scrollHeight;
    });
    es2.addEventListener("counts", function (e) {
      var c = document.getElementById("counts");
      if (c) c.outerHTML = e.data;
    });
    es2.addEventListener("drill", function () { location.reload(); });
    if (box) box.scrollTop = box.scrollHeight;
  }
})();

// Forms that ask first (the failover button): delegated, since fragments are replaced.
document.addEventListener("submit", function (e) {
  var msg = e.target.dataset ? e.target.dataset.confirm : null;
  if (msg && !window.confirm(msg)) e.preventDefault();
});
