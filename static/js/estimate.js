// An estimate's words as the server writes them (templatetags/desk.py, estimate_text):
// whole minutes up to 10, fives beyond, "any moment" once the range has passed. Shared
// by the desk (resq.js) and the students' pages (students.js), which count estimates
// down from the two times each carries.
(function () {
  "use strict";
  function formatEstimate(fromMs, untilMs) {
    let low = fromMs / 60000;
    let high = untilMs / 60000;
    if (high < 1) return "starts any moment";
    const step = high <= 10 ? 1 : 5;
    low = Math.max(0, Math.floor(low / step) * step);
    high = Math.max(Math.ceil(high / step) * step, low + step);
    return low === 0 ? "starts within " + high + " min" : "starts in " + low + "–" + high + " min";
  }
  window.ResQ = Object.freeze({ formatEstimate: formatEstimate });
})();
