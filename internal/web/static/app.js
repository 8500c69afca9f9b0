// Postfach UI: progressive enhancement only. Every form works without this file.
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.remove("no-js");
  root.classList.add("js");

  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  // A checkbox with data-reveal="id" shows the fieldset with that id only while ticked
  // ("mit Authentifizierung" reveals the SMTP settings, "Benutzerrechte" the user picker).
  function setupReveal(box) {
    var target = document.getElementById(box.getAttribute("data-reveal"));
    if (!target) return;
    var sync = function () { target.classList.toggle("hidden", !box.checked); };
    box.addEventListener("change", sync);
    sync();
  }

  // "+ Benutzer hinzufügen": the select row appears on click; a second click adds another.
  function setupAdder(adder) {
    var button = adder.querySelector("[data-add]");
    var template = adder.querySelector(".add-row");
    if (!button || !template) return;
    var select = template.querySelector("select");
    if (!select || select.value === "") template.classList.add("hidden");
    button.addEventListener("click", function () {
      if (template.classList.contains("hidden")) {
        template.classList.remove("hidden");
        template.querySelector("select").focus();
        return;
      }
      var copy = template.cloneNode(true);
      copy.querySelector("select").value = "";
      adder.appendChild(copy);
      copy.querySelector("select").focus();
    });
  }

  // A form with data-inplace="#id" is sent in the background; the element with that id is
  // replaced by the same element of the answer (the Mail-Accounts status, the explanation box).
  function setupInplace(form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var sel = form.getAttribute("data-inplace");
      var method = (form.getAttribute("method") || "get").toUpperCase();
      var url = form.getAttribute("action") || location.pathname;
      var opts = { method: method, credentials: "same-origin" };
      var data = new FormData(form);
      if (method === "GET") {
        url += (url.indexOf("?") < 0 ? "?" : "&") + new URLSearchParams(data).toString();
      } else {
        opts.body = new URLSearchParams(data);
      }
      fetch(url, opts).then(function (res) { return res.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector(sel);
        var old = document.querySelector(sel);
        if (!fresh || !old) { form.submit(); return; }
        old.replaceWith(document.importNode(fresh, true));
        document.querySelectorAll(sel + " form[data-inplace]").forEach(setupInplace);
      }).catch(function () { form.submit(); });
    });
  }

  ready(function () {
    document.querySelectorAll("input[data-reveal]").forEach(setupReveal);
    document.querySelectorAll("[data-adder]").forEach(setupAdder);
    document.querySelectorAll("form[data-inplace]").forEach(setupInplace);
    // A select with data-autosubmit (the Vorlage picker) reloads its form on change.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
  });
})();
