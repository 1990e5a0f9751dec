// zoneflow dashboard: follow the event stream and refresh the parts of the page it
// says changed. Hand-written, no framework and no build step (doc/dashboard.md).
//
// A live part is an element with data-part (the template block that draws it) and
// data-topics (the event types that change it): the script fetches the page again
// with ?part=NAME and puts what the server drew in its place. A job's graph is
// re-coloured at once from task events, without asking the server.
(function () {
  "use strict";
  const stream = document.body.dataset.stream;
  const status = document.getElementById("live-status");
  if (!stream || !status) { return; }
  const parts = Array.from(document.querySelectorAll("[data-part]"));
  const waiting = new Map();
  // Events that come close together make one fetch per part.
  const GATHER_MS = 100;

  function refresh(part) {
    if (waiting.has(part)) { return; }
    waiting.set(part, setTimeout(async function () {
      waiting.delete(part);
      // Do not redraw a form the user is typing in: try again once they leave it.
      const active = document.activeElement;
      if (active && part.contains(active) && active.matches("input, textarea, select")) {
        active.addEventListener("blur", function () { refresh(part); }, { once: true });
        return;
      }
      const url = new URL(window.location.href);
      url.searchParams.set("part", part.dataset.part);
      try {
        const answer = await fetch(url, { credentials: "same-origin" });
        draw(part, await answer.text());
      } catch (err) {
        status.textContent = "could not refresh: " + err;
      }
    }, GATHER_MS));
  }

  // A part redrawn between a press and its release loses the click: the link pressed
  // is gone when the button comes up, and the browser sends no click at all (a job's
  // link in a busy zone's history did nothing). While a pointer is down in a part,
  // its new drawing is held (data-held) and put in place once the click is over.
  let pressed = null;
  const held = new Map();
  document.addEventListener("pointerdown", function (event) {
    pressed = event.target instanceof Element ? event.target.closest("[data-part]") : null;
  }, true);
  function released() {
    pressed = null;
    // The click is dispatched right after the release, in the same task.
    setTimeout(function () {
      for (const [part, html] of held) { delete part.dataset.held; draw(part, html); }
      held.clear();
    }, 0);
  }
  for (const type of ["pointerup", "pointercancel"]) {
    document.addEventListener(type, released, true);
  }
  window.addEventListener("blur", released);

  function draw(part, html) {
    if (part === pressed) {
      held.set(part, html);
      part.dataset.held = "true";
      return;
    }
    part.innerHTML = html;
    for (const [task, state] of painted) { paintRow(task, state); }
    part.dataset.refreshed = String(Date.now());
  }

  // Heartbeats publish no event: a part drawn from them is refreshed every
  // data-every seconds instead.
  for (const part of parts) {
    const every = Number(part.dataset.every || 0);
    if (every > 0) { setInterval(function () { refresh(part); }, every * 1000); }
  }

  // --- the job's graph -----------------------------------------------------------
  const graph = document.getElementById("graph");
  const colours = graph ? JSON.parse(graph.dataset.colours || "{}") : {};
  const jobId = graph ? graph.dataset.job : null;

  // Each re-colouring from an event, with the event's time and the page's (epoch ms):
  // what bench/dashboard_live.py reads to time an event's way to the page.
  window.zoneflowPaints = [];

  function paint(task, state) {
    if (!graph) { return; }
    for (const node of graph.querySelectorAll("g.node")) {
      const title = node.querySelector("title");
      if (!title || title.textContent !== task) { continue; }
      node.dataset.state = state;
      node.dataset.paintedAt = String(performance.timeOrigin + performance.now());
      for (const shape of node.querySelectorAll("path, polygon, ellipse")) {
        if (colours[state]) { shape.setAttribute("fill", colours[state]); }
      }
      const lines = node.querySelectorAll("text");
      if (lines.length > 1) { lines[1].textContent = state; }
    }
    painted.set(task, state);
    paintRow(task, state);
  }

  // The task's row in the table too. The table, drawn again by the server, reads the
  // job's record, which the conductor writes a moment after the engine's events: a
  // redrawn table gets the newer states the events brought back (see refresh).
  const painted = new Map();
  function paintRow(task, state) {
    for (const row of document.querySelectorAll("#tasks tr[data-task]")) {
      if (row.dataset.task !== task) { continue; }
      const cell = row.querySelector(".state");
      if (cell) { cell.textContent = state; cell.className = "state s-" + state; }
    }
  }

  if (graph) {
    const states = JSON.parse(graph.dataset.states || "{}");
    for (const [task, state] of Object.entries(states)) { paint(task, state); }
    graph.dataset.ready = "true";
  }

  // --- a target's health, at once -------------------------------------------------
  // An alarm and a target's new health are drawn from the event itself, before the
  // parts that show them are fetched again (which a busy server may take a while to
  // answer): an operator sees a target DOWN as soon as the event arrives.
  function showHealth(event) {
    const health = event.value && event.value.health;
    const word = health || (event.action === "DOWN" || event.action === "UP" ? event.action : null);
    if (!word) { return; }
    for (const cell of document.querySelectorAll('tr[data-target] [data-health]')) {
      if (cell.closest("tr").dataset.target !== event.key) { continue; }
      cell.textContent = word;
      cell.dataset.health = word;
      cell.className = "health h-" + word;
    }
  }

  function raiseAlarm(event) {
    const list = document.getElementById("open-alarms");
    if (!list || event.action !== "DOWN") { return; }
    if (list.querySelector('.alarm[data-target="' + CSS.escape(event.key) + '"]')) { return; }
    let items = list.querySelector("ul.alarms");
    if (!items) {
      list.textContent = "";
      items = document.createElement("ul");
      items.className = "alarms";
      list.appendChild(items);
    }
    const item = document.createElement("li");
    item.className = "alarm";
    item.dataset.target = event.key;
    item.setAttribute("role", "alert");
    const word = document.createElement("strong");
    word.textContent = "DOWN";
    const link = document.createElement("a");
    link.href = document.body.dataset.root + "/targets/" + encodeURIComponent(event.key);
    link.textContent = (event.value && event.value.target) || event.key;
    item.append(word, " ", link, " since " + event.created_at.replace("T", " ").slice(0, 19) + " UTC");
    items.appendChild(item);
  }

  // --- the stream ----------------------------------------------------------------
  function onEvent(message) {
    let event;
    try { event = JSON.parse(message.data); } catch (err) { return; }
    if (event.type === "target") { showHealth(event); }
    if (event.type === "alarm") { raiseAlarm(event); }
    if (event.type === "task" && jobId && event.value && event.value.job_id === jobId) {
      // One event carries every task whose state changed since the job's last one.
      for (const [task, seen] of Object.entries(event.value.tasks || {})) {
        paint(task, seen.state);
        window.zoneflowPaints.push({
          task: task, state: seen.state,
          changed: seen.changed_at || event.created_at,
          painted: performance.timeOrigin + performance.now(),
        });
      }
    }
    for (const part of parts) {
      const topics = (part.dataset.topics || "").split(",");
      if (topics.includes(event.type)) { refresh(part); }
    }
  }

  // EventSource reconnects by itself and sends Last-Event-ID, so the server
  // resumes after the last event this page received: none is lost.
  const source = new EventSource(stream);
  source.onopen = function () { status.textContent = "live"; status.dataset.live = "true"; };
  source.onerror = function () {
    status.dataset.live = "false";
    status.textContent = source.readyState === EventSource.CLOSED
      ? "not live: reload the page" : "reconnecting…";
  };
  for (const type of ["zone", "recordset", "job", "task", "target", "alarm", "propagation"]) {
    source.addEventListener(type, onEvent);
  }
})();
