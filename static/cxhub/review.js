/* cxhub review page: send a decision without reloading the page. Progressive enhancement:
   without this file the form posts as usual and the server redirects back to the page.

   A decision sent from here carries `X-Requested-With: fetch`; the server answers with an HTML
   fragment (#review-result, #decision-panel, #approval-chain). The panel and the chain replace
   their namesakes on the page, the result is read out by the live region, and focus goes to the
   first field in error, else the panel's heading. Anything else (signed out, a server error,
   offline) falls back to an ordinary submit, so the page itself says what happened. */
(function () {
  "use strict";

  var live = document.getElementById("review-live");
  if (!live || !window.fetch || !window.DOMParser || !window.FormData) return;

  function announce(text) {
    // Emptied first, so that the same words twice are read out twice.
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function csrfToken(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function swap(fragment, id) {
    var fresh = fragment.getElementById(id);
    var old = document.getElementById(id);
    if (!fresh || !old) return null;
    var node = document.importNode(fresh, true);
    old.parentNode.replaceChild(node, old);
    return node;
  }

  function send(form) {
    var button = form.querySelector("button[type=submit]");
    form.setAttribute("aria-busy", "true");
    if (button) button.disabled = true;
    announce("Sending your decision…");
    return fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(form), "X-Requested-With": "fetch" }
    }).then(function (response) {
      return response.text();
    }).then(function (html) {
      var fragment = new DOMParser().parseFromString(html, "text/html");
      var result = fragment.getElementById("review-result");
      if (!result || !fragment.getElementById("decision-panel")) {
        throw new Error("The answer is not a review fragment.");
      }
      // The live region says it once: the error summary need not shout it again as an alert.
      var summary = fragment.querySelector("#decision-panel .error-summary[role=alert]");
      if (summary) summary.removeAttribute("role");
      var panel = swap(fragment, "decision-panel");
      swap(fragment, "approval-chain");
      announce(result.textContent.trim());
      var focus = panel && (panel.querySelector("[aria-invalid=true]") ||
                            panel.querySelector(".error-summary") ||
                            panel.querySelector("#decision-heading"));
      if (focus) focus.focus();
    });
  }

  // Delegated: the form is replaced after every answer.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-review-form")) return;
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    send(form).catch(function () {
      form.removeAttribute("aria-busy");
      HTMLFormElement.prototype.submit.call(form);
    });
  });
})();
