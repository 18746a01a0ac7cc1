// ResQ desk behaviour: live timers, polling that pauses in a hidden tab, sync status,
// modal dialogs, and the returning-student name. No inline script anywhere: the page
// runs under a strict Content-Security-Policy.
(function () {
  "use strict";

  // Server time minus browser time, so timers are right even on a badly set clock.
  let clockOffset = 0;
  let lastSync = null;
  let ownAction = false;
  // No poll answered since this was set (no answer, or no database): the timers still
  // count, but what they count may have changed on another screen.
  let stale = false;

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

  const formatEstimate = window.ResQ.formatEstimate; // estimate.js

  function tick() {
    const now = Date.now() + clockOffset;
    document.querySelectorAll(".estimate[data-from]").forEach(function (el) {
      const text = formatEstimate(Date.parse(el.dataset.from) - now, Date.parse(el.dataset.until) - now);
      if (el.textContent !== text) el.textContent = text;
    });
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
      if (el.classList.contains("stale") !== stale) {
        el.classList.toggle("stale", stale);
        el.title = stale ? "Out of date: the server has not answered since the last sync" : "";
      }
      const minutes = elapsed / 60000;
      const level = minutes >= 30 ? 30 : minutes >= 20 ? 20 : minutes >= 10 ? 10 : 0;
      for (const l of [0, 10, 20, 30]) {
        el.classList.toggle("level-" + l, l === level);
      }
    });
    checkIdle();
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
    if (stale !== (state !== "ok")) {
      stale = state !== "ok";
      tick();
    }
    // At the top of the page and kept in view: the status line under a long board is
    // out of sight. An alert, so it is heard once, when the connection drops.
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

  // The 24-hour clock, as the board's own times are ("13:02", not "01:02 pm").
  function timeOfDay(date, withSeconds) {
    const parts = [date.getHours(), date.getMinutes()];
    if (withSeconds !== false) parts.push(date.getSeconds());
    return parts
      .map(function (n) {
        return String(n).padStart(2, "0");
      })
      .join(":");
  }

  // --- a quiet spell ------------------------------------------------------------------
  // The session ends after a while without a request of the person's own; the poll is
  // not one. Every htmx answer says how many seconds are left (X-Session-Idle-Left), so
  // the desk warns a little before, with one button that is such a request.
  const IDLE_WARNING_MS = 2 * 60 * 1000;
  let idleDeadline = null;
  let focusBeforeWarning = null;

  function noteIdleLeft(xhr) {
    const left = parseInt((xhr && xhr.getResponseHeader("X-Session-Idle-Left")) || "", 10);
    if (isNaN(left)) return;
    idleDeadline = Date.now() + left * 1000;
    checkIdle();
  }

  function checkIdle() {
    const box = document.getElementById("idle-warning");
    const text = document.getElementById("idle-warning-text");
    if (!box || !text || idleDeadline === null) return;
    const due = idleDeadline - Date.now() <= IDLE_WARNING_MS;
    if (due === !box.hidden) return;
    if (due) {
      focusBeforeWarning = document.activeElement;
      // A fixed time rather than a countdown: an alert that changed every second would
      // be read out every second.
      text.textContent =
        "Still there? Without activity you will be logged out at " +
        timeOfDay(new Date(idleDeadline), false) +
        ".";
      box.hidden = false;
    } else {
      const hadFocus = box.contains(document.activeElement);
      box.hidden = true;
      text.textContent = "";
      if (hadFocus) {
        const back =
          focusBeforeWarning && focusBeforeWarning.isConnected && focusBeforeWarning !== document.body
            ? focusBeforeWarning
            : document.getElementById("board-heading");
        if (back) back.focus();
      }
    }
  }

  // --- logged out -----------------------------------------------------------------------
  // An htmx request that finds the session ended is answered with a message in place
  // of the page (X-Logged-Out). What was typed in ADD TO QUEUE is kept in this tab's
  // sessionStorage (gone when the tab closes) and put back on the desk after logging in,
  // until the student is added.
  const KEPT = "resq:add-form";
  const KEPT_FIELDS = ["student_name", "student_number", "unit_code", "team", "enquiry_type"];

  function keepTyping() {
    const form = document.getElementById("add-form");
    if (!form) return false;
    const values = {};
    let any = false;
    KEPT_FIELDS.forEach(function (name) {
      const field = form.elements[name];
      if (field && field.value) {
        values[name] = field.value;
        any = true;
      }
    });
    if (!any) return false;
    try {
      sessionStorage.setItem(KEPT, JSON.stringify(values));
      return true;
    } catch (e) {
      return false;
    }
  }

  function forgetTyping() {
    try {
      sessionStorage.removeItem(KEPT);
    } catch (e) {
      // Storage switched off: there is nothing to forget.
    }
    const note = document.getElementById("restored-typing");
    if (note) note.remove();
  }

  function restoreTyping() {
    const form = document.getElementById("add-form");
    if (!form) return;
    let values = null;
    try {
      values = JSON.parse(sessionStorage.getItem(KEPT) || "null");
    } catch (e) {
      values = null;
    }
    if (!values || typeof values !== "object") return;
    let restored = false;
    KEPT_FIELDS.forEach(function (name) {
      const field = form.elements[name];
      const value = values[name];
      if (!field || field.value || typeof value !== "string") return;
      field.value = value;
      // A team or enquiry type retired meanwhile is no longer an option.
      if (field.value === value) restored = true;
    });
    if (!restored) {
      forgetTyping();
      return;
    }
    const note = document.createElement("div");
    note.id = "restored-typing";
    note.className = "alert info";
    note.setAttribute("role", "status");
    form.before(note);
    const text = document.createElement("p");
    text.textContent = "Restored what you were typing before you were logged out. Check it, then add the student.";
    note.appendChild(text);
  }

  // The alerts stay at the top of the window; the add panel, sticky too, keeps below
  // them rather than under them.
  function keepAddPanelBelowAlerts() {
    const alerts = document.querySelector(".desk-alerts");
    if (!alerts || !window.ResizeObserver) return;
    new ResizeObserver(function () {
      document.documentElement.style.setProperty("--desk-alerts-height", alerts.offsetHeight + "px");
    }).observe(alerts);
  }

  // --- the add form ---------------------------------------------------------------------
  // "Already waiting" stops being true once that visit is started, finished or
  // removed (here or on another screen): the warning and its "Add anyway" go then.
  function checkDuplicateWarning() {
    const warning = document.querySelector("#add-form [data-duplicate-of]");
    if (!warning) return;
    const row = document.getElementById(warning.dataset.duplicateOf);
    const inSession = Boolean(row && row.closest(".sessions"));
    const waiting = Boolean(row) && !inSession;
    const applies = warning.dataset.duplicateStatus === "waiting" ? waiting : inSession;
    if (applies) return;
    const form = warning.closest("form");
    const anyway = form.querySelector('[name="confirm_duplicate"]');
    const hadFocus = anyway && anyway === document.activeElement;
    warning.remove();
    if (anyway) anyway.remove();
    if (hadFocus) {
      const add = form.querySelector('button[type="submit"]');
      if (add) add.focus();
    }
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

  document.addEventListener("htmx:beforeSwap", function (evt) {
    const xhr = evt.detail.xhr;
    if (xhr && xhr.getResponseHeader("X-Logged-Out") && evt.detail.shouldSwap) {
      const kept = keepTyping();
      document.addEventListener(
        "htmx:afterSettle",
        function () {
          const note = document.getElementById("kept-typing");
          if (note) note.hidden = !kept;
        },
        { once: true }
      );
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

  // The element that made the request: once it has been swapped out, htmx tells its
  // parent instead, as evt.detail.elt.
  function requester(evt) {
    return (evt.detail.requestConfig && evt.detail.requestConfig.elt) || evt.detail.elt;
  }

  document.addEventListener("htmx:afterRequest", function (evt) {
    const answer = evt.detail.xhr;
    noteIdleLeft(answer);
    // Added (the board came back with it, not the form with its errors).
    const elt = requester(evt);
    if (elt && elt.id === "add-form" && evt.detail.successful && answer.getResponseHeader("X-Board-Version")) {
      forgetTyping();
    }
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
    checkDuplicateWarning();
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

  // The answer to "Still there?": the warning goes with the new idle time.
  document.addEventListener("htmx:afterRequest", function (evt) {
    const elt = requester(evt);
    if (!evt.detail.successful || !elt || !elt.closest || !elt.closest("#idle-warning")) return;
    const announcer = document.getElementById("board-announcer");
    if (announcer) announcer.textContent = "You are still logged in.";
  });

  // The desk is keyboard-first: Enter on a list in the add form adds, as it does in its
  // text fields, rather than opening the list (the arrow keys and typing choose). The
  // form's default button is pressed, as the browser does from a text field.
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Enter" || evt.altKey || evt.ctrlKey || evt.metaKey || evt.shiftKey) return;
    const select = evt.target.closest ? evt.target.closest("#add-form select") : null;
    if (!select) return;
    evt.preventDefault();
    const button = select.form.querySelector('button[type="submit"], input[type="submit"]');
    if (button) button.click();
  });

  // Someone logging out on purpose leaves nothing of theirs for the next person.
  document.addEventListener("submit", function (evt) {
    if (evt.target.matches && evt.target.matches("form.logout")) forgetTyping();
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
    restoreTyping();
    keepAddPanelBelowAlerts();
    setInterval(tick, 1000);
  });
})();
