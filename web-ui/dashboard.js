// mxgate dashboard: reloads the live panels (#live) every 10 s without a
// full page load. Progressive enhancement only: the page is complete
// without it. Stops while the tab is hidden.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch || !window.DOMParser) { return; }
  var seconds = parseInt(live.getAttribute("data-refresh"), 10) || 10;
  function reload() {
    if (document.hidden) { return; }
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
        if (fresh) { live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes)); }
      })
      .catch(function () { /* keep the last panels; try again next time */ });
  }
  window.setInterval(reload, seconds * 1000);
})();
