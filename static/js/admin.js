// ResQ's additions to Django's admin. No inline script: admin runs under the same strict
// Content-Security-Policy as the rest of ResQ.
(function () {
  "use strict";

  // Django keeps the navigation sidebar open unless the manager has closed it. Beside
  // it, on a laptop screen, a wide list (the visits) only fits by scrolling sideways
  // inside its box, with the scroll bar at the foot of a hundred rows: columns look cut
  // off. So when the list does not fit and the manager has not chosen, the sidebar
  // starts closed; its toggle opens it, and from then on their choice is kept.
  const STORED = "django.admin.navSidebarIsOpen"; // Django's own key (nav_sidebar.js)
  const toggle = document.getElementById("toggle-nav-sidebar");
  const main = document.getElementById("main");
  const results = document.querySelector("#changelist .results");
  if (!toggle || !main || !results || localStorage.getItem(STORED) !== null) return;
  if (main.classList.contains("shifted") && results.scrollWidth > results.clientWidth) {
    // Through Django's own handler, so that its state and aria-expanded agree; the
    // click stores "closed", which was the page's choice, not the manager's.
    toggle.click();
    localStorage.removeItem(STORED);
  }
})();
