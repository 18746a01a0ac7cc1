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

  // The server is up but its database is not: it answers 503 with this header.
  const DATABASE_DOWN =
    "The server can't reach its database — changes are not being saved. " +
    "This page will recover by itself.";

  function databaseDown(xhr) {
    return Boolean(xhr) && xhr.status === 503 && xhr.getResponseHeader("X-Database") === "unreachable";
  }

  // A banner of its own (it is an alert, so it is heard once when it appears): the
  // leader must stop trusting the board and the buttons, not just a status line.
  function showDatabaseAlert(down) {
    const banner = document.getElementById("database-alert");
    if (!banner || banner.hidden === !down) return;
    banner.textContent = down ? DATABASE_DOWN : "";
    banner.hidden = !down;
  }

  // States: "ok", "offline" (no answer from the server), "database" (an answer that
  // says the database cannot be reached).
  function setSyncStatus(state, text) {
    const el = document.getElementById("sync-status");
    if (!el) return;
    const was = el.dataset.state;
    el.dataset.state = state;
    el.textContent = text;
    showDatabaseAlert(state === "database");
    const alert = document.getElementById("sync-alert");
    if (!alert) return;
    if (state === "offline" && was !== "offline") {
      alert.textContent = "Cannot reach the server: this board may be out of date.";
    } else if (state !== "offline" && was === "offline") {
      alert.textContent = "";
    }
    if (state === "ok" && (was === "offline" || was === "database")) {
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
  function databaseUnreachable() {
    const since = lastSync ? " Last synced " + timeOfDay(lastSync) + "." : "";
    setSyncStatus(
      "database",
      "The server can't reach its database: this board may be out of date. Retrying…" + since
    );
  }
  // Any desk request may be the first to hear that the database is gone (an action
  // that was not saved, most importantly); the next good poll clears it.
  document.addEventListener("htmx:responseError", function (evt) {
    if (databaseDown(evt.detail.xhr)) {
      databaseUnreachable();
    } else if (isPoll(evt)) {
      offline();
    }
  });

  // --- a desk action that failed ----------------------------------------------------
  // htmx swaps nothing when a request fails, so a failed action would look like a
  // button that does nothing. A short alert goes where the leader is looking (the open
  // dialog, or the messages above the board) and goes when their next action works, not
  // with the next poll, which may come a second later. Polls have their own status line
  // and a database that is down has its own banner: neither is handled here.
  function actionErrorText(evt) {
    if (evt.type === "htmx:sendError") {
      return "That didn't work (the server could not be reached). Check the board before trying again.";
    }
    const status = evt.detail.xhr ? evt.detail.xhr.status : 0;
    if (status === 403) {
      return "That didn't work (not allowed). Nothing was changed — reload the page and try again.";
    }
    if (status === 404) {
      return "That didn't work (not found: it may have been removed). Nothing was changed.";
    }
    // Over the student number look-up's limit a minute: the server's short text says
    // what to do instead.
    const type = evt.detail.xhr ? evt.detail.xhr.getResponseHeader("Content-Type") || "" : "";
    if (status === 429 && type.startsWith("text/plain")) return evt.detail.xhr.responseText;
    if (status >= 500) return "That didn't work (server error). Nothing was changed — try again.";
    return "That didn't work (error " + status + "). Nothing was changed — try again.";
  }

  function clearActionError() {
    document.querySelectorAll("[data-action-error]").forEach(function (el) {
      el.remove();
    });
  }

  function showActionError(evt) {
    if (isPoll(evt) || databaseDown(evt.detail.xhr)) return;
    const elt = evt.detail.elt;
    const dialog = elt && elt.closest ? elt.closest("dialog[open]") : null;
    const area = dialog ? dialog.querySelector("form") || dialog : document.getElementById("messages");
    if (!area) return;
    clearActionError();
    const alert = document.createElement("div");
    alert.className = "alert error";
    alert.setAttribute("role", "alert");
    alert.dataset.actionError = "";
    const text = document.createElement("p");
    text.textContent = actionErrorText(evt);
    alert.appendChild(text);
    area.prepend(alert);
  }

  document.addEventListener("htmx:responseError", showActionError);
  document.addEventListener("htmx:sendError", showActionError);
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (!isPoll(evt)) clearActionError();
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
