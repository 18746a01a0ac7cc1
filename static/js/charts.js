// Data Analytics: draws every chart whose figure the server put in a json_script
// element, on load and whenever htmx swaps in new charts. No inline script: the page
// runs under a strict Content-Security-Policy.
(function () {
  "use strict";

  const CONFIG = { displaylogo: false, responsive: true };

  function draw(root) {
    if (typeof Plotly === "undefined" || !root.querySelectorAll) return;
    root.querySelectorAll("[data-figure-id]").forEach(function (el) {
      if (el.classList.contains("js-plotly-plot")) return;
      // The json_script element sits inside a <template> (htmx would strip it from a
      // swap otherwise), so it is in the template's content, not the document.
      const holder = el.parentNode.querySelector("template.figure-data");
      const source = holder && holder.content.getElementById(el.dataset.figureId);
      if (!source) return;
      const fig = JSON.parse(source.textContent);
      Plotly.newPlot(el, fig.data, fig.layout, CONFIG);
    });
  }

  // Old plots keep resize listeners on the window; free them before the swap
  // replaces their containers.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    if (target && target.id === "charts" && typeof Plotly !== "undefined") {
      target.querySelectorAll(".js-plotly-plot").forEach(function (el) {
        Plotly.purge(el);
      });
    }
  });

  // htmx:load fires on each element htmx adds, including a #charts swapped in with
  // outerHTML (whose old element, the swap's target, has left the document).
  document.addEventListener("htmx:load", function (event) {
    draw(event.target);
  });

  // Following "Previous week" or "Next week", keyboard and screen-reader users land
  // on the heading of the period they asked for.
  document.addEventListener("htmx:afterSettle", function (event) {
    const elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (elt && elt.tagName === "A" && elt.hasAttribute("rel")) {
      const heading = document.getElementById("report-heading");
      if (heading) heading.focus();
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      draw(document);
    });
  } else {
    draw(document);
  }

  // WebKit can run this deferred script before a stylesheet that was not cached yet
  // applies: each chart is then sized to the page's width, not its card's, and
  // `responsive` only follows window resizes. Once every stylesheet has loaded, fit
  // each chart to its card again.
  if (document.readyState !== "complete") {
    window.addEventListener("load", function () {
      if (typeof Plotly === "undefined") return;
      document.querySelectorAll(".js-plotly-plot").forEach(function (el) {
        Plotly.Plots.resize(el);
      });
    });
  }
})();
