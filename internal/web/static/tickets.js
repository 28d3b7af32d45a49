// The ticket list's refresh (see ticket_changes.go). Progressive: without
// this script the list is a plain page. While the tab is visible it asks
// /tickets/changes?since=N every 15 s by default (at once when the tab comes back);
// when a ticket changed it offers "Refresh", which redraws the list and its
// tab counts in place, keeps any ticked checkboxes ticked, and moves focus
// to the list. Hidden tabs do not poll.
(function () {
  "use strict";
  var live = document.getElementById("list-live");
  var results = document.getElementById("ticket-results");
  if (!live || !results || !window.fetch) {
    return;
  }
  var every = parseInt(live.getAttribute("data-every"), 10) || 15000, wait = every, timer = 0, shown = false;
  var since = live.getAttribute("data-since");

  function schedule(ms) {
    clearTimeout(timer);
    if (document.visibilityState === "visible" && !shown) {
      timer = setTimeout(poll, ms);
    }
  }

  function poll() {
    fetch(live.getAttribute("data-changes") + "?since=" + encodeURIComponent(since), {
      credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store"
    }).then(function (resp) {
      if (resp.status === 401 || resp.status === 403) {
        throw "stop";
      }
      if (!resp.ok) {
        throw new Error("status " + resp.status);
      }
      return resp.json();
    }).then(function (a) {
      wait = every;
      if (a.changed) {
        offer();
      } else {
        since = String(a.last);
        schedule(wait);
      }
    }).catch(function (err) {
      if (err === "stop") {
        return; // signed out: the next click shows the sign-in page
      }
      wait = Math.min(wait * 2, 120000);
      schedule(wait);
    });
  }

  function offer() {
    shown = true;
    live.textContent = "";
    var text = document.createElement("span");
    text.textContent = "New activity since this list was shown.";
    var button = document.createElement("a");
    button.className = "button button-primary";
    button.id = "list-refresh";
    button.href = live.getAttribute("data-self");
    button.textContent = "Refresh";
    button.addEventListener("click", refresh);
    live.appendChild(text);
    live.appendChild(button);
    live.classList.add("callout");
  }

  function refresh(ev) {
    ev.preventDefault();
    var url = live.getAttribute("data-self");
    fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (resp) {
      if (!resp.ok || resp.redirected) {
        throw new Error("status " + resp.status);
      }
      return resp.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("ticket-results");
      var freshLive = doc.getElementById("list-live");
      if (!fresh || !freshLive) {
        throw new Error("not a ticket list");
      }
      var ticked = {};
      results.querySelectorAll("input[type=checkbox]:checked").forEach(function (c) {
        ticked[c.name + "=" + c.value] = true;
      });
      results.innerHTML = fresh.innerHTML;
      results.querySelectorAll("input[type=checkbox]").forEach(function (c) {
        if (ticked[c.name + "=" + c.value]) {
          c.checked = true;
        }
      });
      // Both rows of counts: whose tickets (Mine, Unassigned, All) and status.
      [".views", ".tabs"].forEach(function (sel) {
        var old = document.querySelector(sel), fresh = doc.querySelector(sel);
        if (old && fresh) {
          old.innerHTML = fresh.innerHTML;
        }
      });
      since = freshLive.getAttribute("data-since");
      live.classList.remove("callout");
      live.textContent = "List refreshed.";
      shown = false;
      results.focus();
      setTimeout(function () { if (!shown) { live.textContent = ""; } }, 4000);
      schedule(every);
    }).catch(function () {
      window.location.assign(url); // a full load shows whatever happened
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      schedule(0);
    } else {
      clearTimeout(timer);
    }
  });
  schedule(every);
})();
