/* cxhub inbox: triage from the keyboard, the item's panel beside the list, "select all" and the
   live update. Progressive enhancement: without this file every link opens the item's own page
   and every form posts and redirects as usual.

   The selected row is the one the keyboard works on (j/k or ↓/↑ move it, and focus with it).
   The panel's forms and the e (close) and a (assign to me) keys post with
   `X-Requested-With: fetch`; the server answers with a fragment (#inbox-result, #item-panel and
   the item's row) that replaces its namesakes here, keeping the row's checkbox, the selection
   and the focus, and the live region reads the result out. Anything unexpected (signed out, a
   server error, offline) falls back to the ordinary request, so the page itself says what
   happened.

   The live update asks every few seconds how many items came after the newest row shown, and
   only says so (a polite status and a button): rows never move under the person's eyes, focus
   or selection on their own. The new rows are put on top when they press the button. */
(function () {
  "use strict";

  var table = document.getElementById("inbox-items");
  if (!table || !window.fetch || !window.DOMParser || !window.FormData) return;

  var tbody = table.tBodies[0];
  var live = document.getElementById("inbox-live");
  var dialog = document.getElementById("shortcuts-dialog");
  var selected = null;

  // Helpers ----------------------------------------------------------------------------------
  function announce(text) {
    // Emptied first, so that the same words twice are read out twice.
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function csrfToken() {
    var field = document.querySelector("#bulk-form input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  function rows() {
    return Array.prototype.slice.call(tbody.rows);
  }

  function rowOf(node) {
    return node && node.closest ? node.closest("tr.inbox-row") : null;
  }

  // Selection ----------------------------------------------------------------------------------
  function select(row, focus) {
    if (selected && selected !== row) {
      selected.classList.remove("is-selected");
      selected.removeAttribute("aria-current");
    }
    selected = row;
    row.classList.add("is-selected");
    row.setAttribute("aria-current", "true");
    if (focus) row.focus();
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var list = rows();
    if (!list.length) return;
    var index = selected ? list.indexOf(selected) : -1;
    index = index === -1 ? 0 : Math.min(list.length - 1, Math.max(0, index + step));
    select(list[index], true);
  }

  // The "select all" box and the count of selected items ----------------------------------------
  var all = document.getElementById("select-all");
  var count = document.getElementById("bulk-count");

  function boxes() {
    return Array.prototype.slice.call(tbody.querySelectorAll("input[name=items]"));
  }

  function refreshAll() {
    var list = boxes();
    var checked = list.filter(function (box) { return box.checked; }).length;
    all.checked = list.length > 0 && checked === list.length;
    all.indeterminate = checked > 0 && checked < list.length;
    count.textContent = checked ? "(" + checked + " selected)" : "";
  }

  all.hidden = false;
  document.getElementById("select-all-label").hidden = false;
  all.addEventListener("change", function () {
    boxes().forEach(function (box) { box.checked = all.checked; });
    refreshAll();
  });
  tbody.addEventListener("change", function (event) {
    if (event.target.name === "items") refreshAll();
  });
  refreshAll();

  // Swapping what the server sent ------------------------------------------------------------
  function swapRow(fresh) {
    var old = document.getElementById(fresh.id);
    if (!old) return null;
    var row = document.importNode(fresh, true);
    var box = old.querySelector("input[name=items]");
    var newBox = row.querySelector("input[name=items]");
    if (box && newBox) newBox.checked = box.checked;
    var focused = document.activeElement;
    var hadFocus = old.contains(focused);
    var focusedBox = focused === box;
    old.parentNode.replaceChild(row, old);
    if (selected === old) {
      selected = null;
      select(row, false);
    }
    if (hadFocus) (focusedBox && newBox ? newBox : row).focus();
    return row;
  }

  function swapPanel(fresh) {
    var old = document.getElementById("item-panel");
    if (!old) return null;
    var panel = document.importNode(fresh, true);
    old.parentNode.replaceChild(panel, old);
    return panel;
  }

  function fragmentFrom(response) {
    return response.text().then(function (html) {
      var doc = parse(html);
      if (!doc.getElementById("item-panel")) throw new Error("Not an inbox fragment.");
      return doc;
    });
  }

  // The panel ----------------------------------------------------------------------------------
  function openItem(row) {
    select(row, false);
    var url = row.getAttribute("data-panel-url");
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return fragmentFrom(response);
      })
      .then(function (doc) {
        var panel = swapPanel(doc.getElementById("item-panel"));
        var heading = panel && panel.querySelector("#item-panel-heading");
        if (heading) heading.focus();
      })
      .catch(function () { window.location.assign(url); });
  }

  // Posts a panel form (or the e and a keys' requests) and puts the answer in place. The panel
  // is replaced only when it shows the item acted on; focus goes back to where it was (a field
  // in error first), else to the panel's heading.
  function post(url, body, origin) {
    body.append("csrfmiddlewaretoken", csrfToken());
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" }
    }).then(fragmentFrom).then(function (doc) {
      var result = doc.getElementById("inbox-result");
      var freshPanel = doc.getElementById("item-panel");
      var freshRow = doc.querySelector("tr.inbox-row");
      if (freshRow) swapRow(freshRow);
      var current = document.getElementById("item-panel");
      if (current && current.getAttribute("data-item") === freshPanel.getAttribute("data-item")) {
        var summary = freshPanel.querySelector(".error-summary[role=alert]");
        // The live region says it once: the panel's summary need not shout it again.
        if (summary) summary.removeAttribute("role");
        // Focus inside the panel (on the form sent, or on its heading when a key acted) would be
        // lost with the old panel: it goes to the same place in the new one.
        var focused = document.activeElement;
        var hadFocus = current.contains(focused) || Boolean(origin && current.contains(origin));
        var focusId = hadFocus && focused ? focused.id : "";
        var panel = swapPanel(freshPanel);
        if (hadFocus) {
          var target = panel.querySelector("[aria-invalid=true]") ||
                       (focusId && panel.querySelector("#" + focusId)) ||
                       panel.querySelector("#item-panel-heading");
          if (target) target.focus();
        }
      }
      announce(result ? result.textContent.trim() : "Done.");
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-panel-form")) return;
    if (!document.getElementById("item-panel").contains(form)) return;
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    form.setAttribute("aria-busy", "true");
    var body = new FormData(form);
    body.delete("csrfmiddlewaretoken");
    post(form.action, body, form).catch(function () {
      form.removeAttribute("aria-busy");
      HTMLFormElement.prototype.submit.call(form);
    });
  });

  tbody.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-open-item]") : null;
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    openItem(rowOf(link));
  });

  // The e and a keys ------------------------------------------------------------------------
  function needSelection() {
    if (selected && document.body.contains(selected)) return true;
    announce("Choose an item first: j or k moves to one.");
    return false;
  }

  function closeSelected() {
    if (!needSelection()) return;
    var body = new FormData();
    body.append("status", "closed");
    post(selected.getAttribute("data-status-url"), body, null)
      .catch(function () { announce("The item could not be closed. Reload the page and try again."); });
  }

  function assignSelectedToMe() {
    if (!needSelection()) return;
    var body = new FormData();
    body.append("assignee", table.getAttribute("data-me"));
    post(selected.getAttribute("data-assign-url"), body, null)
      .catch(function () { announce("The item could not be assigned. Reload the page and try again."); });
  }

  function toggleSelected() {
    if (!needSelection()) return;
    var box = selected.querySelector("input[name=items]");
    box.checked = !box.checked;
    refreshAll();
    announce(box.checked ? "Selected." : "Unselected.");
  }

  // The shortcuts list --------------------------------------------------------------------------
  var shortcutsButton = document.getElementById("shortcuts-button");
  function showShortcuts() {
    if (dialog && !dialog.open) dialog.showModal();
  }
  if (dialog && dialog.showModal) {
    shortcutsButton.hidden = false;
    shortcutsButton.addEventListener("click", showShortcuts);
    document.getElementById("panel-keys-hint").hidden = false;
  }

  // Keys -----------------------------------------------------------------------------------------
  var NOT_TYPING = ["checkbox", "radio", "button", "submit", "reset", "image", "file", "color", "range"];

  function typing(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable) return true;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && NOT_TYPING.indexOf(target.type) === -1;
  }

  // ↓/↑ move between rows only from the list (or from nowhere): elsewhere they scroll the page.
  function inList(target) {
    return target === document.body || target === document.documentElement ||
           target.id === "main" || table.contains(target);
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (dialog && dialog.open) return;
    var target = event.target;
    if (typing(target)) return;
    var handled = true;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "ArrowDown": if (inList(target)) move(1); else handled = false; break;
      case "ArrowUp": if (inList(target)) move(-1); else handled = false; break;
      case "Enter":
        // On a row (or its checkbox) Enter opens it; on a link or button it does their own.
        var row = rowOf(target);
        if (row && (target === row || target.name === "items")) openItem(row);
        else handled = false;
        break;
      case "o": if (needSelection()) openItem(selected); break;
      case "x": toggleSelected(); break;
      case "e": closeSelected(); break;
      case "a": assignSelectedToMe(); break;
      case "/":
        var first = document.querySelector("#inbox-filters select, #inbox-filters input");
        if (first) first.focus();
        break;
      case "?": showShortcuts(); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });

  // Clicking a row's blank space selects it (what the keys then act on).
  tbody.addEventListener("mousedown", function (event) {
    var row = rowOf(event.target);
    if (row) select(row, false);
  });

  // The live update ---------------------------------------------------------------------------
  var newest = table.getAttribute("data-newest");
  var status = document.getElementById("inbox-updates");
  var showNew = document.getElementById("inbox-show-new");
  if (newest === null || !status || !showNew) return;
  var pollMs = Math.max(1, Number(table.getAttribute("data-poll-seconds")) || 10) * 1000;
  var updatesUrl = table.getAttribute("data-updates-url");
  var rowsUrl = table.getAttribute("data-rows-url");
  var shown = 0;
  var more = false;

  function withAfter(url) {
    return url + (url.indexOf("?") === url.length - 1 ? "" : "&") + "after=" + encodeURIComponent(newest);
  }

  function poll() {
    if (document.hidden) return schedule();
    var asked = newest;
    fetch(withAfter(updatesUrl), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var found = parse(html).getElementById("inbox-updates-fragment");
        // New rows were shown while this answer was on its way: it counts them again.
        if (!found || asked !== newest) return;
        var number = Number(found.getAttribute("data-count"));
        // Said once per change: a polite status read out again every few seconds is noise.
        if (number === shown) return;
        shown = number;
        more = found.getAttribute("data-more") === "true";
        status.textContent = found.querySelector("p").textContent.trim();
        showNew.textContent = found.querySelector("#inbox-updates-button").textContent.trim();
        showNew.hidden = number === 0;
      })
      .catch(function () { /* Offline or signed out: try again at the next tick. */ })
      .then(schedule);
  }

  function schedule() {
    window.setTimeout(poll, pollMs);
  }

  showNew.addEventListener("click", function () {
    if (more) {
      window.location.assign(table.getAttribute("data-first-url"));
      return;
    }
    fetch(withAfter(rowsUrl), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = parse(html).querySelectorAll("tr.inbox-row");
        var top = null;
        var added = 0;
        // Oldest first, each on top: the newest ends first, as the list is ordered.
        for (var index = fresh.length - 1; index >= 0; index--) {
          if (document.getElementById(fresh[index].id)) continue;
          var row = document.importNode(fresh[index], true);
          tbody.insertBefore(row, tbody.firstChild);
          newest = String(Math.max(Number(newest), Number(row.getAttribute("data-item"))));
          top = row;
          added++;
        }
        table.hidden = false;
        var empty = document.getElementById("inbox-empty");
        if (empty) empty.hidden = true;
        shown = 0;
        showNew.hidden = true;
        status.textContent = added === 1 ? "1 new item is now at the top of the list." :
          added + " new items are now at the top of the list.";
        refreshAll();
        // The person asked for them: the first one takes the selection and focus.
        if (top) select(tbody.rows[0], true);
      })
      .catch(function () { window.location.assign(table.getAttribute("data-first-url")); });
  });

  schedule();
})();
