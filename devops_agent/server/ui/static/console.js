// The console's only script: a run's timeline, live through the run's Server-Sent Events.
// Served from the package; pages work without it.
(function () {
  "use strict";
  function start() {
    var run = document.getElementById("run");
    if (!run || run.dataset.live !== "yes" || !window.EventSource) { return; }
    var id = run.dataset.run;
    var timeline = document.getElementById("timeline");
    var status = document.getElementById("status");
    var outcome = document.getElementById("outcome");
    var live = document.getElementById("live");
    var source = new EventSource("/ui/runs/" + encodeURIComponent(id) + "/events");
    live.textContent = "live";
    function add(node, text) {
      var item = document.createElement("li");
      var name = document.createElement("span");
      name.className = "node";
      name.textContent = node;
      item.appendChild(name);
      item.appendChild(document.createTextNode(" " + text));
      timeline.appendChild(item);
    }
    source.addEventListener("state", function (e) {
      var view = JSON.parse(e.data);
      status.textContent = view.status;
      outcome.textContent = view.outcome || "";
    });
    source.addEventListener("update", function (e) {
      var data = JSON.parse(e.data);
      add(data.node || "node", new Date().toISOString());
    });
    source.addEventListener("interrupt", function (e) {
      add(JSON.parse(e.data).node || "interrupt", "waits for a person");
    });
    source.addEventListener("status", function (e) {
      var data = JSON.parse(e.data);
      if (data.status) { status.textContent = data.status; }
    });
    source.addEventListener("end", function (e) {
      var data = JSON.parse(e.data);
      status.textContent = data.status;
      outcome.textContent = data.outcome || "";
      live.textContent = "finished";
      source.close();
      window.location.reload();
    });
    source.onerror = function () { live.textContent = "reconnecting"; };
  }
  document.addEventListener("DOMContentLoaded", start);
})();
