// ResQ desk behaviour: live timers, polling that pauses in a hidden tab, sync status,
// modal dialogs, and the returning-student name. No inline script anywhere: the page
// runs under a strict Content-Security-Policy.
(function () {
  "use strict";

  // Server time minus browser time, so timers are right even on a badly set clock.
  let clockOffset = 0;
  let lastSync = null;
  let ownAction = false;

  function board() {
    return document.getElementById("board");
  }

  function setServerClock(iso) {
    const serverNow = Date.parse(iso || "");
    if (!isNaN(serverNow)) clockOffset = serverNow - Date.now();
  }

  function formatElapsed(ms) {
    let seconds = Math.max(0, Math.floor(ms / 1000));
    const hours = Math.floor(seconds / 3600);
    seconds -= hours * 3600;
    const minutes = Math.floor(seconds / 60);
    seconds -= minutes * 60;
    const ss = String(seconds).padStart(2, "0");
    if (hours) {
      return hours + ":" + String(minutes).padStart(2, "0") + ":" + ss;
    }
    return minutes + ":" + ss;
  }

  function tick() {
    const now = Date.now() + clockOffset;
    // An undo is offered only within its window; the board may not change for longer.
    document.querySelectorAll("[data-undo-until]").forEach(function (el) {
      if (now > Date.parse(el.dataset.undoUntil)) {
        const section = el.closest("section");
        el.remove();
        if (section && !section.querySelector("[data-undo-until]")) section.remove();
      }
    });
    document.querySelectorAll(".timer[data-since]").forEach(function (el) {
      const elapsed = now - Date.parse(el.dataset.since);
      el.textContent = formatElapsed(elapsed);
      const minutes = elapsed / 60000;
      const level = minutes >= 30 ? 30 : minutes >= 20 ? 20 : minutes >= 10 ? 10 : 0;
      for (const l of [0, 10, 20, 30]) {
        el.classList.toggle("level-" + l, l === level);
      }
    });
  }

  function setSyncStatus(state, text) {
    const el = document.getElementById("sync-status");
    if (!el) return;
    const wasOffline = el.dataset.state === "offline";
    el.dataset.state = state;
    el.textContent = text;
    const alert = document.getElementById("sync-alert");
    if (!alert) return;
    if (state === "offline" && !wasOffline) {
      alert.textContent = "Cannot reach the server: this board may be out of date.";
    } else if (state === "ok" && wasOffline) {
      alert.textContent = "";
      const announcer = document.getElementById("board-announcer");
      if (announcer) announcer.textContent = "Connection restored: the board is up to date.";
    }
  }

  function timeOfDay(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function summary() {
    const el = document.querySelector("#board-heading .summary");
    return el ? el.textContent : "";
  }

  function isPoll(evt) {
    return evt.detail.elt && evt.detail.elt.id === "sync";
  }

  // A hidden tab does not poll; it catches up the moment it is shown again (the
  // visibilitychange trigger on #sync fires a poll then).
  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (isPoll(evt)) {
      if (document.hidden) evt.preventDefault();
    } else if (evt.detail.target && evt.detail.target.id === "board") {
      ownAction = true;
    }
  });

  // A poll answered before an action but arriving after it must not put the older
  // board back.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (!isPoll(evt)) return;
    const incoming = parseInt(evt.detail.xhr.getResponseHeader("X-Board-Version") || "", 10);
    const el = board();
    const current = el ? parseInt(el.dataset.version || "0", 10) : 0;
    if (!isNaN(incoming) && incoming < current) evt.detail.shouldSwap = false;
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!isPoll(evt)) return;
    const xhr = evt.detail.xhr;
    if (evt.detail.successful || (xhr && xhr.status === 204)) {
      lastSync = new Date();
      setSyncStatus("ok", "Live · last synced " + timeOfDay(lastSync));
    }
  });

  function offline() {
    const since = lastSync ? " Last synced " + timeOfDay(lastSync) + "." : "";
    setSyncStatus("offline", "Cannot reach the server: this board may be out of date. Retrying…" + since);
  }
  document.addEventListener("htmx:sendError", function (evt) {
    if (isPoll(evt)) offline();
  });
  document.addEventListener("htmx:timeout", function (evt) {
    if (isPoll(evt)) offline();
  });
  document.addEventListener("htmx:responseError", function (evt) {
    if (isPoll(evt)) offline();
  });

  // Boards arrive rendered once per version for every screen, so their timers may be
  // seconds old: correct the clock and redraw them before the browser paints.
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.xhr) setServerClock(evt.detail.xhr.getResponseHeader("X-Server-Now"));
    tick();
  });

  document.addEventListener("htmx:afterSettle", function (evt) {
    const target = evt.detail.target;
    if (!target) return;
    if (target.id === "board") {
      if (ownAction) {
        ownAction = false;
        // The button just pressed may have left with its row: keep keyboard users
        // on the board rather than dropped at the top of the page.
        if (!document.activeElement || document.activeElement === document.body) {
          const heading = document.getElementById("board-heading");
          if (heading) heading.focus();
        }
      } else {
        const announcer = document.getElementById("board-announcer");
        if (announcer) announcer.textContent = "Queue updated: " + summary();
      }
    }
    const dialog = document.querySelector("#dialog dialog[data-modal]");
    if (dialog && !dialog.open) {
      dialog.showModal();
      const focus = dialog.querySelector("[autofocus]");
      if (focus) focus.focus();
    }
  });

  document.addEventListener("click", function (evt) {
    const close = evt.target.closest("[data-close-dialog]");
    if (close) {
      const dialog = close.closest("dialog");
      if (dialog && dialog.closest("#dialog")) {
        evt.preventDefault();
        dialog.close();
      }
      return;
    }
    const fill = evt.target.closest("[data-fill-name]");
    if (fill) {
      const name = document.getElementById("id_student_name");
      if (name) {
        name.value = fill.dataset.fillName;
        const next = document.getElementById("id_unit_code");
        (next || name).focus();
      }
    }
  });

  // A closed dialog leaves the page entirely, so it cannot be reopened stale.
  document.addEventListener(
    "close",
    function (evt) {
      if (evt.target.matches && evt.target.matches("#dialog dialog")) {
        document.getElementById("dialog").replaceChildren();
        const heading = document.getElementById("board-heading");
        if (heading && (!document.activeElement || document.activeElement === document.body)) {
          heading.focus();
        }
      }
    },
    true
  );

  document.addEventListener("DOMContentLoaded", function () {
    const desk = document.querySelector("[data-server-now]");
    if (desk) setServerClock(desk.dataset.serverNow);
    tick();
    if (board()) {
      lastSync = new Date();
      setSyncStatus("ok", "Live · last synced " + timeOfDay(lastSync));
    }
    setInterval(tick, 1000);
  });
})();
