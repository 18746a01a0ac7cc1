// The room's display and a student's own page: both poll like the desk's board (a 204
// while nothing they show has changed), swap in what changed, count estimates down, and
// say when they last heard from the server, loudly once it stops answering. Built to
// run for days on a TV without a reload: one timer, one request at a time, each answer
// replacing the part it updates and nothing kept from the one before.
(function () {
  "use strict";

  const root = document.querySelector("[data-poll-url]");
  if (!root) return;

  const pollMs = Number(root.dataset.pollMs) || 2000;
  // No answer for this long (five polls, and at least six seconds): warn, keep trying.
  const STALE_AFTER_MS = Math.max(pollMs * 5, 6000);
  const zone = root.dataset.timeZone || undefined;
  const clock = new Intl.DateTimeFormat("en-AU", {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZone: zone,
  });
  const heartbeat = document.getElementById("heartbeat");
  const live = document.getElementById("display-live") || document.getElementById("place-status");
  let lastHeard = 0;
  let clockOffset = 0; // server clock minus this browser's, from each answer's Date

  function heard(response) {
    lastHeard = Date.now();
    const date = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(date)) clockOffset = date - Date.now();
    heartbeat.textContent = "Updated " + clock.format(new Date(lastHeard + clockOffset));
    heartbeat.classList.remove("stale");
    heartbeat.removeAttribute("role");
  }

  function checkStale() {
    // A phone's hidden tab polls slowly (and its browser slower still): no alarm for that.
    if (document.hidden || gone) return;
    if (lastHeard && Date.now() - lastHeard > STALE_AFTER_MS && !heartbeat.classList.contains("stale")) {
      heartbeat.classList.add("stale");
      heartbeat.setAttribute("role", "alert");
      heartbeat.textContent =
        "Not updating since " + clock.format(new Date(lastHeard + clockOffset)) +
        ": check the network. This screen recovers by itself.";
    }
  }

  function pollUrl() {
    const params = new URLSearchParams({ v: root.dataset.version });
    const code = live.querySelector("[data-room-code]");
    if (code) params.set("c", code.dataset.roomCode);
    if (root.dataset.digest) params.set("s", root.dataset.digest);
    return root.dataset.pollUrl + "?" + params.toString();
  }

  // A request the network swallowed is given up, so the next poll can try (older TV
  // browsers have no AbortSignal.timeout).
  function giveUpAfter(ms) {
    if (typeof AbortSignal.timeout === "function") return AbortSignal.timeout(ms);
    const controller = new AbortController();
    setTimeout(function () { controller.abort(); }, ms);
    return controller.signal;
  }

  // The address no longer opens anything (a display revoked, a visit long over): say
  // so, once, and stop asking.
  let gone = false;
  function addressGone() {
    gone = true;
    heartbeat.classList.add("stale");
    heartbeat.setAttribute("role", "alert");
    heartbeat.textContent = root.dataset.goneText || "This page is no longer available.";
  }

  let timer = null;
  async function poll() {
    timer = null;
    try {
      const response = await fetch(pollUrl(), {
        credentials: "same-origin", cache: "no-store", signal: giveUpAfter(STALE_AFTER_MS),
      });
      const body = await response.text();
      if (response.status === 404) {
        addressGone();
        return;
      }
      if (response.status === 200 || response.status === 204) {
        const version = response.headers.get("X-Board-Version");
        if (version) root.dataset.version = version;
        if (response.status === 200) {
          const digest = response.headers.get("X-Digest");
          if (digest) root.dataset.digest = digest;
          live.innerHTML = body;
          tick();
        }
        heard(response);
      }
    } catch (err) {
      // Offline, or the server restarting: the next poll tries again.
    }
    checkStale();
    timer = setTimeout(poll, document.hidden ? pollMs * 5 : pollMs);
  }

  // Back to a hidden tab (a phone unlocked): ask at once rather than at the next turn.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer !== null && !gone) {
      clearTimeout(timer);
      poll();
    }
  });

  // Estimates count down; a code called leaves the screen after its minute.
  function tick() {
    const now = Date.now() + clockOffset;
    live.querySelectorAll(".estimate[data-from]").forEach(function (el) {
      const text = window.ResQ.formatEstimate(Date.parse(el.dataset.from) - now, Date.parse(el.dataset.until) - now);
      if (el.textContent !== text) el.textContent = text;
    });
    live.querySelectorAll("[data-called-until]").forEach(function (el) {
      if (now > Date.parse(el.dataset.calledUntil)) el.remove();
    });
    checkStale();
  }

  // Leaving gives up a place in line: asked once more, so a stray tap costs nothing.
  document.addEventListener("submit", function (evt) {
    const message = evt.target.dataset && evt.target.dataset.confirm;
    if (message && !window.confirm(message)) evt.preventDefault();
  });

  lastHeard = Date.now();
  heartbeat.textContent = "Updated " + clock.format(new Date());
  tick();
  setInterval(tick, 1000);
  timer = setTimeout(poll, pollMs);
})();
