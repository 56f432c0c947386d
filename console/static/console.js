// The console's only script. Every page works without it; it makes them live: lists, and
// transcripts with the actions their state allows, refresh every few seconds (documents while
// some are processing), times show in the browser's time zone, a reply being typed survives a
// refresh, a file too large for an upload is refused before it is sent, a chosen template shows
// its parameters' fields, a voice note being played keeps playing through a refresh. Nothing here
// inserts text as HTML except the server's own partials.
"use strict";

(function () {
  var POLL_MS = 2500;
  var clock = new Intl.DateTimeFormat(pageLocale(), { dateStyle: "medium", timeStyle: "short" });

  // The page's language (<html lang>, which CONSOLE_LANGUAGE may set apart from the browser's),
  // in the browser's own regional form when it speaks that language (en-GB: a 24-hour clock).
  function pageLocale() {
    var lang = document.documentElement.lang || "";
    var primary = lang.split("-")[0].toLowerCase();
    var own = (navigator.languages || [navigator.language]).filter(function (tag) {
      return tag && tag.split("-")[0].toLowerCase() === primary;
    })[0];
    return own || lang || undefined;
  }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        el.title = el.textContent;
        el.textContent = clock.format(when);
      }
    });
  }

  function nearBottom() {
    var page = document.documentElement;
    return window.innerHeight + window.scrollY >= page.scrollHeight - 120;
  }

  function toBottom() {
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  function squeezed(html) { return html.replace(/\s+/g, " ").trim(); }

  // A partial's <div hidden data-live-into="<id>"> carries what belongs elsewhere on the page
  // (a conversation's actions): it replaces that element's content when it differs.
  function movePieces(el) {
    el.querySelectorAll("[data-live-into]").forEach(function (piece) {
      var target = document.getElementById(piece.getAttribute("data-live-into"));
      piece.remove();
      if (target && squeezed(target.innerHTML) !== squeezed(piece.innerHTML)) {
        target.replaceChildren.apply(target, Array.prototype.slice.call(piece.childNodes));
      }
    });
  }

  // A refresh keeps the media already on the page (a voice note playing, an image loaded):
  // each element with data-media takes the place of its twin in the new partial.
  function keepMedia(root, fresh) {
    root.querySelectorAll("[data-media]").forEach(function (old) {
      var key = old.getAttribute("data-media");
      var twins = fresh.querySelectorAll(old.tagName + "[data-media]");
      for (var i = 0; i < twins.length; i++) {
        if (twins[i].getAttribute("data-media") === key) {
          twins[i].replaceWith(old);
          return;
        }
      }
    });
  }

  // An element with data-live="<url>" is replaced by that URL's partial while the tab is visible
  // (every data-live-ms milliseconds), until a partial carries data-live-stop.
  function live(el) {
    var url = el.getAttribute("data-live");
    var every = parseInt(el.getAttribute("data-live-ms"), 10) || POLL_MS;
    var last = null;
    var busy = false;
    var timer = null;

    function refresh() {
      if (document.hidden || busy || timer === null) return;
      busy = true;
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 401 || response.status === 403 || response.status === 404) {
            window.location.reload(); // signed out, or gone: the page says which
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null || html === last) return;
          var keep = el.hasAttribute("data-keep-bottom") && nearBottom();
          var template = document.createElement("template");
          template.innerHTML = html;
          keepMedia(el, template.content);
          el.replaceChildren(template.content);
          movePieces(el);
          last = html;
          localTimes(el);
          if (keep) toBottom();
          if (el.querySelector("[data-live-stop]")) {
            window.clearInterval(timer);
            timer = null;
          }
        })
        .catch(function () { /* offline for a moment: the next tick tries again */ })
        .finally(function () { busy = false; });
    }

    timer = window.setInterval(refresh, every);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer !== null) refresh();
    });
  }

  // The reply being typed is kept per conversation until the server says it was sent.
  function keepDraft(area) {
    var key = area.getAttribute("data-draft");
    try {
      if (document.body.hasAttribute("data-reply-sent")) window.sessionStorage.removeItem(key);
      else if (!area.value) area.value = window.sessionStorage.getItem(key) || "";
      area.addEventListener("input", function () { window.sessionStorage.setItem(key, area.value); });
    } catch (e) { /* storage refused (private mode): drafts are not kept */ }
  }

  // Delegated, so forms a live update swaps in ask too.
  function confirmations() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (form instanceof HTMLFormElement && form.hasAttribute("data-confirm") &&
          !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  }

  // A file input with data-max-bytes refuses a larger file at once, instead of after sending it.
  function sizeLimit(input) {
    var max = parseInt(input.getAttribute("data-max-bytes"), 10);
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      input.setCustomValidity(file && file.size > max ? input.getAttribute("data-too-large") : "");
      if (file && file.size > max) input.reportValidity();
    });
  }

  // The template form: choosing a template shows its body and one field per parameter at
  // once (without the script, the form's Choose button asks the server for them).
  function templateForm(select) {
    var fields = document.getElementById(select.getAttribute("data-template-parameters"));
    var body = document.getElementById(select.getAttribute("data-template-body"));
    var choose = select.form.querySelector("[data-choose]");
    if (!fields) return;
    if (choose) choose.hidden = true;
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var labels = option.getAttribute("data-labels") || "";
      fields.replaceChildren();
      labels.split("\n").filter(Boolean).forEach(function (text, index) {
        var label = document.createElement("label");
        var input = document.createElement("input");
        input.id = "parameter-" + (index + 1);
        input.name = "parameter";
        input.type = "text";
        input.maxLength = 1024;
        input.autocomplete = "off";
        label.htmlFor = input.id;
        label.textContent = text;
        fields.append(label, input);
      });
      if (!fields.children.length) {
        var none = document.createElement("p");
        none.className = "hint";
        none.textContent = fields.getAttribute("data-none");
        fields.append(none);
      }
      if (body) body.textContent = option.getAttribute("data-body") || "";
    });
  }

  function start() {
    localTimes(document);
    document.querySelectorAll("[data-live]").forEach(live);
    document.querySelectorAll("textarea[data-draft]").forEach(keepDraft);
    document.querySelectorAll("input[type=file][data-max-bytes]").forEach(sizeLimit);
    document.querySelectorAll("select[data-template-parameters]").forEach(templateForm);
    confirmations();
    if (document.querySelector("[data-keep-bottom]")) toBottom();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
