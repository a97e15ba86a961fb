/* The billing tab's few lines of script (PRT-2). Every page works without them:
   a link with data-dialog leads to a confirmation page; with script it opens the
   <dialog> of that id as a modal instead (which holds focus and closes on Escape),
   and focus returns to the control that opened it. */
(function () {
  "use strict";
  var opener = null;
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) { return; }
    var open = target.closest("[data-dialog]");
    if (open) {
      var dialog = document.getElementById(open.getAttribute("data-dialog"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        opener = open;
        dialog.showModal();
      }
      return;
    }
    var close = target.closest("[data-close]");
    if (close) {
      var parent = close.closest("dialog");
      if (parent) { parent.close(); }
    }
  });
  document.addEventListener("close", function () {
    if (opener) { opener.focus(); opener = null; }
  }, true);
})();
