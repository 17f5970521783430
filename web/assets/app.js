// Assay web: progressive enhancement only — every page works without it.
// 1. Live refresh: pages with data-refresh="N" re-fetch themselves every N
//    seconds and swap in the new <main>, unless the reader is using a form
//    or focus is inside the content.
// 2. Forms with data-remember="NAME" remember their value in localStorage
//    and re-apply it on the next visit (the electricity price). A value is
//    stored only once a page rendered with it (the form is on the page, so
//    the server accepted it): a mistyped price never traps later visits on
//    an error page. A stored value the page already shows is not re-applied
//    (no redirect loop).
// 3. Copy buttons copy the command beside them.
(function () {
  "use strict";

  function remember() {
    document.querySelectorAll("form[data-remember]").forEach(function (form) {
      var name = form.getAttribute("data-remember");
      var input = form.querySelector("[name='" + name + "']");
      if (!input) return;
      var key = "assay:" + name;
      var params = new URLSearchParams(window.location.search);
      var stored = null;
      try { stored = window.localStorage.getItem(key); } catch (e) { return; }
      if (params.has(name)) {
        try { window.localStorage.setItem(key, params.get(name)); } catch (e) { /* private mode */ }
      } else if (stored && stored !== input.value) {
        params.set(name, stored);
        window.location.replace(window.location.pathname + "?" + params.toString() + window.location.hash);
      }
    });
  }

  function copyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (b) {
      b.addEventListener("click", function () {
        var pre = document.getElementById(b.getAttribute("data-copy"));
        if (!pre || !navigator.clipboard) return;
        navigator.clipboard.writeText(pre.textContent.trim()).then(function () {
          b.textContent = "Copied";
        }, function () {
          b.textContent = "Select the command to copy it";
        });
      });
    });
  }

  function busy() {
    var a = document.activeElement;
    return a && a !== document.body && a.closest && a.closest("main") !== null
      && a.id !== "main";
  }

  function refresh(seconds) {
    window.setInterval(function () {
      if (document.hidden || busy()) return;
      fetch(window.location.href, { headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          var next = doc.querySelector("main");
          var main = document.querySelector("main");
          if (next && main && !busy()) {
            main.innerHTML = next.innerHTML;
            copyButtons(main);
          }
        })
        .catch(function () { /* offline: keep the page as it is */ });
    }, seconds * 1000);
  }

  remember();
  copyButtons(document);
  var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (every > 0) refresh(every);
})();
