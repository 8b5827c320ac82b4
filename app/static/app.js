// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // Live countdowns: <span class="countdown" data-deadline="ISO">.
  function tick() {
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.dataset.deadline) - Date.now()) / 1000);
      if (left <= 0) { el.textContent = "passed"; return; }
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600),
          m = Math.floor(left % 3600 / 60), s = left % 60;
      var pad = function (n) { return (n < 10 ? "0" : "") + n; };
      el.textContent = (d ? d + "d " : "") + pad(h) + "h " + pad(m) + "m " + pad(s) + "s left";
    });
  }

  // The session ended (logged out elsewhere, expired): stop polling and say so, with a way back.
  function sessionEnded(el) {
    el.dataset.polling = "stopped";
    if (document.getElementById("session-ended")) return;
    var box = document.createElement("p"), link = document.createElement("a");
    box.id = "session-ended";
    box.className = "warn-box";
    box.setAttribute("role", "alert");
    link.href = "/login?expired=1&next=" + encodeURIComponent(location.pathname + location.search);
    link.textContent = "Log in again";
    box.appendChild(document.createTextNode("Your session has ended, so this status stopped updating. "));
    box.appendChild(link);
    box.appendChild(document.createTextNode(" to see the latest."));
    el.parentNode.insertBefore(box, el);
  }

  // How long to wait before asking again: 1.5 s, or longer for a grade that is far off (a sixth of
  // the estimate, at most 10 s), so a long queue is not also a flood of polls.
  function pollDelay(estimateSeconds) {
    if (!estimateSeconds) return 1500;
    return Math.round(Math.min(10, Math.max(1.5, estimateSeconds / 6)) * 1000);
  }

  // Poll an HTML fragment while it says something is pending (data-pending="1").
  function pollFragment(container, url) {
    function pending() {
      var marker = container.querySelector("[data-pending]");
      return marker && marker.dataset.pending === "1";
    }
    function again() {
      if (!pending()) return;
      var marker = container.querySelector("[data-pending]");
      setTimeout(function () {
        fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
          .then(function (r) {
            if (r.status === 401) { sessionEnded(container); return null; }
            return r.ok ? r.text() : "";
          })
          .then(function (html) {
            if (html === null) return;          // stopped: the session ended
            if (html) container.innerHTML = html;
            again();
          })
          .catch(function () { setTimeout(again, 1500); });
      }, pollDelay(parseFloat(marker.dataset.estimate || "0")));
    }
    again();
  }

  // The words of the queue_place macro (_macros.html), from the API's "queue" field.
  function approx(seconds) {
    return seconds < 90 ? Math.max(5, Math.round(seconds / 5) * 5) + " s" : Math.round(seconds / 60) + " min";
  }
  function queuePlace(q) {
    if (!q) return "";
    return "Position " + q.position + " in the queue" +
      (q.estimate_seconds === null ? "" : "; grade in about " + approx(q.estimate_seconds));
  }

  // Submission page: reload once the grade is in.
  function pollStatus(el) {
    // the pending statuses come from the page (app/store/states.py renders them there)
    var url = el.dataset.pollStatus, current = el.dataset.current, pending = el.dataset.pending.split(" ");
    if (pending.indexOf(current) < 0) return;
    setTimeout(function check() {
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401) { sessionEnded(el); return null; }
        return r.json();
      }).then(function (b) {
        if (b === null) return;
        if (pending.indexOf(b.status) < 0) { location.reload(); return; }
        var place = document.getElementById("queue-place");
        if (place) place.textContent = queuePlace(b.queue);
        if (b.status !== current) {
          current = b.status;
          var badge = el.querySelector("[data-status]");
          if (badge) { badge.textContent = b.status; badge.dataset.status = b.status; badge.className = "badge status-" + b.status; }
        }
        setTimeout(check, pollDelay(b.queue && b.queue.estimate_seconds));
      }).catch(function () { setTimeout(check, 3000); });
    }, 1500);
  }

  // Upload form: drag and drop onto the box, and a clear message for a wrong file before sending.
  function setupUpload(form) {
    var input = form.querySelector("input[type=file]"), zone = form.querySelector("[data-drop]"),
        error = form.querySelector("#upload-error"), max = parseInt(form.dataset.maxBytes, 10),
        suffixes = (form.dataset.suffixes || ".tar").split(" "),
        layout = form.dataset.layout || "models/ and mytorch/";
    function problem(file) {
      if (!file) return "Choose your handin.tar first.";
      var name = file.name.toLowerCase();
      if (!suffixes.some(function (s) { return name.slice(-s.length) === s; }))
        return "\u201c" + file.name + "\u201d is not a tar archive (or a " + suffixes.join(", ") + " file): upload handin.tar (built by create_tarball.sh), with " + layout + " inside.";
      if (file.size > max)
        return "\u201c" + file.name + "\u201d is " + (file.size / 1048576).toFixed(1) + " MiB; the limit is " + (max / 1048576) + " MiB.";
      if (file.size === 0) return "\u201c" + file.name + "\u201d is empty.";
      return "";
    }
    function show(msg) { error.textContent = msg; error.hidden = !msg; input.setAttribute("aria-invalid", msg ? "true" : "false"); }
    input.addEventListener("change", function () { show(problem(input.files[0])); });
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      input.files = e.dataTransfer.files;
      show(problem(input.files[0]));
    });
    form.addEventListener("submit", function (e) {
      var msg = problem(input.files[0]);
      show(msg);
      if (msg) { e.preventDefault(); input.focus(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // Bar widths come as data (the Content-Security-Policy forbids style attributes in markup).
    document.querySelectorAll("[data-width]").forEach(function (el) { el.style.width = el.dataset.width + "%"; });
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("[data-poll]").forEach(function (el) { pollFragment(el, el.dataset.poll); });
    document.querySelectorAll("[data-poll-status]").forEach(pollStatus);
    document.querySelectorAll("form.upload").forEach(setupUpload);
    var progress = document.getElementById("regrade-progress");
    if (progress && progress.dataset.pollSelf) {
      // The regrade progress fragment replaces itself until nothing is pending.
      (function poll(el) {
        setTimeout(function () {
          fetch(el.dataset.pollSelf, { credentials: "same-origin" }).then(function (r) {
            if (r.status === 401) { sessionEnded(el); return null; }
            return r.text();
          }).then(function (html) {
              if (html === null) return;
              el.outerHTML = html;
              var next = document.getElementById("regrade-progress");
              if (next && next.dataset.pollSelf) poll(next);
              else location.reload();   // all regraded: show the new statuses and scores
            }).catch(function () {});
        }, 1500);
      })(progress);
    }
    var report = document.querySelector("[data-poll-report]");
    if (report) {
      // Similarity report: follow the background job's progress, show the result when it ends.
      (function poll() {
        setTimeout(function () {
          fetch(report.dataset.pollReport, { credentials: "same-origin" }).then(function (r) { return r.json(); })
            .then(function (b) {
              if (!b.pending) { location.reload(); return; }
              var bar = report.querySelector("progress"), text = report.querySelector("[data-progress-text]");
              bar.max = b.total || 1; bar.value = b.done;
              text.textContent = b.done + " of " + (b.total || "?");
              poll();
            }).catch(function () { setTimeout(poll, 3000); });
        }, 1000);
      })();
    }
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
    });
    document.querySelectorAll("[data-select-on-focus]").forEach(function (el) {
      el.addEventListener("focus", function () { el.select(); });
    });
    // Copy buttons: data-copy names the element whose text (or an input's value) is copied.
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var label = button.textContent;
      button.addEventListener("click", function () {
        var source = document.querySelector(button.dataset.copy);
        if (!source) return;
        var text = source.value !== undefined && source.tagName === "INPUT" ? source.value : source.textContent;
        var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = label; }, 2000); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { button.textContent = "Select and copy by hand"; });
        } else {   // plain http: select the text so one keystroke copies it
          var range = document.createRange();
          range.selectNodeContents(source);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          button.textContent = document.execCommand("copy") ? "Copied" : "Selected: copy it";
        }
      });
    });
  });
})();
