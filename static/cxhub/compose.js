/* cxhub compose page: live previews and counters per account, image upload with alt text, and
   the browser's time zone as the default. Progressive enhancement: without this file the form
   still saves, uploads one image and shows the counts of what was saved.

   Counting follows publishing/channels (the server's word is final at save and submit):
   - "graphemes": extended grapheme clusters (Intl.Segmenter), as Bluesky and Mastodon count;
   - "characters": code points;
   - "x-weighted": twitter-text v3 — NFC, every URL 23, every emoji sequence 2, code points
     by range (1 or 2).
   A channel's url_weight replaces each URL by that many characters (Mastodon: 23), and
   mentions_count_local_part counts "@user@server" as "@user". */
(function () {
  "use strict";

  var form = document.getElementById("compose-form");
  var dataNode = document.getElementById("compose-data");
  if (!form || !dataNode) return;
  var data = JSON.parse(dataNode.textContent);

  /* --- Text helpers: ports of publishing/channels/text.py ------------------------------- */

  var URL_CHAR = "[^\\s<>\"'\\u3000-\\u9fff\\uac00-\\ud7af\\uff00-\\uffef]";
  var LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
  var TLD = data.tlds.slice().sort(function (a, b) { return b.length - a.length; }).join("|");
  var SCHEME_URL = new RegExp("https?://" + URL_CHAR + "+", "giu");
  var BARE_URL = new RegExp(
    "(?<![A-Za-z0-9@\\uFF20$#\\uFF03\\-_./])(?:" + LABEL + "\\.)+(?:" + TLD + ")(?![a-z0-9-])" +
    "(?::\\d{1,5})?(?:[/?#]" + URL_CHAR + "*)?", "giu");
  var TRAILING = ".,:;!?'\"*";
  var CLOSERS = { ")": "(", "]": "[", "}": "{" };

  function count(haystack, needle) { return haystack.split(needle).length - 1; }

  function trimUrl(url) {
    while (url) {
      var last = url.charAt(url.length - 1);
      var unbalanced = CLOSERS[last] && count(url, last) > count(url, CLOSERS[last]);
      if (TRAILING.indexOf(last) < 0 && !unbalanced) break;
      url = url.slice(0, -1);
    }
    return url;
  }

  function findUrls(text, bareDomains) {
    var spans = [];
    var match;
    SCHEME_URL.lastIndex = 0;
    while ((match = SCHEME_URL.exec(text)) !== null) {
      var url = trimUrl(match[0]);
      if (url.length > match[0].split("://")[0].length + 3) {
        spans.push({ start: match.index, end: match.index + url.length });
      }
    }
    if (bareDomains) {
      BARE_URL.lastIndex = 0;
      while ((match = BARE_URL.exec(text)) !== null) {
        var bare = trimUrl(match[0]);
        var start = match.index;
        var end = start + bare.length;
        var overlaps = spans.some(function (s) { return s.start < end && start < s.end; });
        if (bare && !overlaps) spans.push({ start: start, end: end });
      }
    }
    return spans.sort(function (a, b) { return a.start - b.start; });
  }

  var PICTO = "\\p{Extended_Pictographic}[\\ufe0e\\ufe0f]?\\p{Emoji_Modifier}?";
  var EMOJI = new RegExp(
    "[0-9#*]\\ufe0f?\\u20e3|\\p{Regional_Indicator}{2}|" + PICTO +
    "[\\u{e0020}-\\u{e007f}]*(?:\\u200d" + PICTO + ")*|\\p{Emoji_Modifier}", "gu");
  var EMOJI_PRESENTATION = /^\p{Emoji_Presentation}$/u;

  function findEmoji(text) {
    var spans = [];
    var match;
    EMOJI.lastIndex = 0;
    while ((match = EMOJI.exec(text)) !== null) {
      var seq = match[0];
      if (Array.from(seq).length === 1 && !EMOJI_PRESENTATION.test(seq)) continue;
      spans.push({ start: match.index, end: match.index + seq.length });
    }
    return spans;
  }

  // Mastodon's Account::MENTION_RE; \w of Ruby and Python is Unicode-aware, JavaScript's is not.
  var MENTION = /(?<![=\/\p{L}\p{N}_])@([a-z0-9_]+(?:[.\-]+[a-z0-9_]+)*)(?:@[\p{L}\p{N}_]+(?:[.\-]+[\p{L}\p{N}_]+)*)?/giu;

  var segmenter = window.Intl && Intl.Segmenter ? new Intl.Segmenter("en", { granularity: "grapheme" }) : null;

  function graphemes(text) {
    if (!segmenter) return Array.from(text).length;
    var n = 0;
    for (var it = segmenter.segment(text)[Symbol.iterator](), step = it.next(); !step.done; step = it.next()) n++;
    return n;
  }

  function utf8Length(text) { return new TextEncoder().encode(text).length; }

  function xWeighted(text) {
    text = text.normalize("NFC");
    var units = {};
    findUrls(text, true).forEach(function (s) { units[s.start] = [s.end, 23]; });
    findEmoji(text).forEach(function (s) {
      if (!(s.start in units)) units[s.start] = [s.end, data.x.default_weight];
    });
    var total = 0;
    var index = 0;
    while (index < text.length) {
      var unit = units[index];
      if (unit) {
        index = unit[0];
        total += unit[1];
        continue;
      }
      var point = text.codePointAt(index);
      var weight = data.x.default_weight;
      for (var r = 0; r < data.x.light_ranges.length; r++) {
        var range = data.x.light_ranges[r];
        if (point >= range[0] && point <= range[1]) { weight = 1; break; }
      }
      total += weight;
      index += point > 0xffff ? 2 : 1;
    }
    return total;
  }

  function countableText(text, spec) {
    var entities = [];
    if (spec.url_weight) {
      var filler = new Array(spec.url_weight + 1).join("x");
      findUrls(text, spec.bare_domain_urls).forEach(function (s) {
        entities.push({ start: s.start, end: s.end, text: filler });
      });
    }
    if (spec.mentions_count_local_part) {
      var match;
      MENTION.lastIndex = 0;
      while ((match = MENTION.exec(text)) !== null) {
        entities.push({ start: match.index, end: match.index + match[0].length, text: "@" + match[1] });
      }
    }
    entities.sort(function (a, b) { return a.start - b.start; });
    var out = "";
    var last = 0;
    entities.forEach(function (e) {
      if (e.start < last) return;
      out += text.slice(last, e.start) + e.text;
      last = e.end;
    });
    return out + text.slice(last);
  }

  function measure(text, spec) {
    if (spec.counting === "x-weighted") return xWeighted(text);
    var countable = countableText(text, spec);
    return spec.counting === "graphemes" ? graphemes(countable) : Array.from(countable).length;
  }

  /* --- Previews and counters --------------------------------------------------------- */

  var body = document.getElementById("compose-body");
  var link = document.getElementById("compose-link");
  var emptyNote = document.getElementById("previews-empty");

  function fmt(n) { return n.toLocaleString("en-US"); }

  function counterText(value, limit, unit) {
    var text = fmt(value) + " / " + fmt(limit) + " " + unit;
    return value > limit ? text + " — " + fmt(value - limit) + " over" : text;
  }

  function publishedText(channel, variant) {
    var text = variant || body.value;
    var url = link ? link.value.trim() : "";
    if (url && data.link_in_text.indexOf(channel) >= 0 && text.indexOf(url) < 0) {
      text = text.trim() ? text.replace(/\s+$/, "") + "\n\n" + url : url;
    }
    return text;
  }

  function setCounter(node, value, limit, unit) {
    var text = counterText(value, limit, unit);
    if (node.textContent !== text) node.textContent = text;
    node.classList.toggle("over", value > limit);
  }

  function updatePreview(accountId) {
    var card = document.getElementById("preview-" + accountId);
    if (!card) return;
    var channel = card.getAttribute("data-channel");
    // An account with limits of its own (a Mastodon server's) counts against those.
    var spec = (data.accounts && data.accounts[accountId]) || data.channels[channel];
    var variant = document.getElementById("variant-" + accountId);
    var text = publishedText(channel, variant ? variant.value : "");
    document.getElementById("preview-" + accountId + "-text").textContent = text;
    card.querySelectorAll(".counter").forEach(function (node) {
      if (node.getAttribute("data-kind") === "bytes") {
        setCounter(node, utf8Length(text), spec.max_bytes, "bytes");
      } else {
        setCounter(node, measure(text, spec), spec.max, spec.unit);
      }
    });
  }

  var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="accounts"]'));

  function selected() { return boxes.filter(function (box) { return box.checked; }); }

  function updateAll() {
    selected().forEach(function (box) { updatePreview(box.value); });
  }

  function showAccount(box) {
    var id = box.value;
    var variantField = document.getElementById("variant-field-" + id);
    var card = document.getElementById("preview-" + id);
    if (variantField) variantField.hidden = !box.checked;
    if (card) card.hidden = !box.checked;
    if (box.checked) updatePreview(id);
    emptyNote.hidden = selected().length > 0;
  }

  boxes.forEach(function (box) {
    box.setAttribute("aria-controls", "variant-field-" + box.value + " preview-" + box.value);
    box.addEventListener("change", function () { showAccount(box); });
    showAccount(box);
  });
  body.addEventListener("input", updateAll);
  if (link) link.addEventListener("input", updateAll);
  form.querySelectorAll("textarea[id^='variant-']").forEach(function (area) {
    area.addEventListener("input", function () { updatePreview(area.getAttribute("data-account")); });
  });

  /* --- Time zone: the browser's when the person has none yet ---------------------------- */

  var zone = document.getElementById("compose-timezone");
  if (zone && zone.getAttribute("data-browser-default") === "true") {
    try {
      var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      var known = Array.prototype.some.call(zone.options, function (o) { return o.value === browserZone; });
      if (known) zone.value = browserZone;
    } catch (e) { /* keep UTC */ }
  }

  /* --- Image upload through the API ------------------------------------------------- */

  var uploadButton = document.getElementById("upload-button");
  var fileInput = document.getElementById("compose-image");
  var altInput = document.getElementById("compose-image-alt");
  var status = document.getElementById("upload-status");
  var mediaList = document.getElementById("media-list");
  var mediaEmpty = document.getElementById("media-empty");
  var team = document.getElementById("compose-team");

  function csrfToken() {
    var input = form.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function fieldError(input, id, message) {
    var node = document.getElementById(id);
    if (!message) {
      if (node && node.getAttribute("data-from-js")) node.remove();
      input.removeAttribute("aria-invalid");
      return;
    }
    if (!node) {
      node = document.createElement("p");
      node.className = "field-error";
      node.id = id;
      node.setAttribute("data-from-js", "true");
      input.insertAdjacentElement("afterend", node);
    }
    node.textContent = message;
    input.setAttribute("aria-invalid", "true");
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (described.indexOf(id) < 0) described.push(id);
    input.setAttribute("aria-describedby", described.join(" "));
  }

  function addMedia(media) {
    var index = mediaList.children.length + 1;
    var item = document.createElement("li");
    item.className = "media-item";
    var figure = document.createElement("figure");
    var img = document.createElement("img");
    img.src = media.thumbnail_url || media.url;
    img.alt = "";
    img.width = 120;
    var caption = document.createElement("figcaption");
    caption.id = "media-" + media.id + "-alt";
    caption.textContent = "Alt text: " + (media.alt_text || "(none)");
    figure.appendChild(img);
    figure.appendChild(caption);
    var check = document.createElement("div");
    check.className = "check";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = "media";
    box.value = String(media.id);
    box.id = "media-" + media.id;
    box.checked = true;
    box.setAttribute("aria-describedby", caption.id);
    var label = document.createElement("label");
    label.htmlFor = box.id;
    label.textContent = "Attach image " + index;
    check.appendChild(box);
    check.appendChild(label);
    item.appendChild(figure);
    item.appendChild(check);
    mediaList.appendChild(item);
    mediaEmpty.hidden = true;
  }

  if (uploadButton && fileInput && altInput && window.fetch && window.FormData) {
    // With JavaScript, Enter in a field saves the draft instead of uploading.
    uploadButton.type = "button";
    uploadButton.addEventListener("click", function () {
      fieldError(fileInput, "compose-image-error", "");
      fieldError(altInput, "compose-image-alt-error", "");
      var problems = false;
      if (!fileInput.files || !fileInput.files.length) {
        fieldError(fileInput, "compose-image-error", "Choose an image file.");
        problems = true;
      }
      if (!altInput.value.trim()) {
        fieldError(altInput, "compose-image-alt-error", "Alt text is required.");
        problems = true;
      }
      if (problems) {
        status.textContent = "The image was not uploaded: see the messages beside the fields.";
        (fileInput.getAttribute("aria-invalid") ? fileInput : altInput).focus();
        return;
      }
      var payload = new FormData();
      payload.append("file", fileInput.files[0]);
      payload.append("alt_text", altInput.value.trim());
      if (team && team.value) payload.append("team", team.value);
      uploadButton.disabled = true;
      status.textContent = "Uploading…";
      fetch(data.upload_url, {
        method: "POST",
        body: payload,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (json) {
          return { ok: response.ok, json: json };
        });
      }).then(function (result) {
        if (!result.ok) {
          var fields = (result.json.extra && result.json.extra.fields) || {};
          var message = result.json.message || "The upload failed.";
          if (fields.alt_text) fieldError(altInput, "compose-image-alt-error", [].concat(fields.alt_text).join(" "));
          else fieldError(fileInput, "compose-image-error", fields.file ? [].concat(fields.file).join(" ") : message);
          status.textContent = "The image was not uploaded: " + message;
          return;
        }
        addMedia(result.json);
        fileInput.value = "";
        altInput.value = "";
        status.textContent = "Image uploaded and attached. It is saved with the post.";
      }).catch(function () {
        status.textContent = "The upload failed: the server could not be reached. Try again.";
      }).then(function () {
        uploadButton.disabled = false;
      });
    });
  }
})();
