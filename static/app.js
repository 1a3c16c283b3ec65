// PiCloud dashboard behaviour that htmx does not cover. No inline scripts (CSP).
"use strict";

// Copy buttons: <button data-copy-text="…"> (or data-copy="#selector") copy the text and
// say so for a moment. Outside a secure context (plain HTTP on a LAN address) the
// Clipboard API is missing: fall back to a selected text area and execCommand.
function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy], [data-copy-text]");
  if (!button) return;
  const source = button.dataset.copy ? document.querySelector(button.dataset.copy) : null;
  const text = button.dataset.copyText ?? source?.textContent.trim();
  if (text == null) return;
  const label = button.textContent;
  copyText(text).then(
    () => { button.textContent = "Copied"; },
    () => { button.textContent = "Press Ctrl-C"; },
  ).finally(() => setTimeout(() => { button.textContent = label; }, 1500));
});

// htmx does not swap error responses (see the htmx-config meta tag): show their
// message above the page instead of failing silently.
function showRequestError(xhr) {
  let message = `${xhr.status} ${xhr.statusText}`;
  const page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  // An htmx request gets the error as a lone alert; a whole error page has it in <main>.
  const detail = page.querySelector("[role=alert], main p");
  if (detail && detail.textContent.trim()) message += `: ${detail.textContent.trim()}`;
  let banner = document.getElementById("request-error");
  if (!banner) {
    banner = document.createElement("p");
    banner.id = "request-error";
    banner.className = "alert error";
    banner.setAttribute("role", "alert");
    document.querySelector("main").prepend(banner);
  }
  banner.textContent = message;
}

// A session that ended while the page was open (logged out elsewhere, cookie gone):
// the server answers htmx requests 401 with X-PiCloud-Session: ended. Keep what each
// failed request would have done, ask the person to log in again in a new tab, then
// fetch a fresh CSRF token and repeat the requests, so no edit is lost. "stale" means
// the session lives but is newer than this page's token: refresh it and repeat at once.
const session = (() => {
  const dialog = document.getElementById("session-ended");
  const failed = new Map(); // element -> {verb, path, target}

  function remember(detail) {
    const config = detail.requestConfig || {};
    failed.set(detail.elt, { verb: config.verb || "get", path: config.path, target: detail.target });
  }

  function applyToken(token) {
    const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    headers["X-CSRFToken"] = token;
    document.body.setAttribute("hx-headers", JSON.stringify(headers));
    document.querySelectorAll("input[name=csrf_token]").forEach((input) => { input.value = token; });
  }

  async function resume() {
    if (!dialog) return false;
    let state = null;
    try {
      const answer = await fetch(dialog.dataset.sessionUrl, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok) state = await answer.json();
    } catch (error) { state = null; }
    if (!state || !state.logged_in) return false;
    applyToken(state.csrf_token);
    if (dialog.open) dialog.close();
    const pending = [...failed.entries()];
    failed.clear();
    for (const [elt, request] of pending) {
      if (elt.isConnected) htmx.ajax(request.verb.toUpperCase(), request.path, { source: elt, target: request.target });
    }
    return true;
  }

  function ended(detail) {
    remember(detail);
    if (dialog && !dialog.open) {
      dialog.querySelector("[data-session-status]").hidden = true;
      dialog.showModal();
    }
  }

  async function stale(detail) {
    remember(detail);
    if (!(await resume())) ended(detail);
  }

  if (dialog) {
    dialog.querySelector("[data-session-retry]").addEventListener("click", async () => {
      if (!(await resume())) dialog.querySelector("[data-session-status]").hidden = false;
    });
    // Coming back from the tab where the person logged in: carry on by itself.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && dialog.open) resume();
    });
  }
  return { ended, stale };
})();

document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  const state = xhr.getResponseHeader("X-PiCloud-Session");
  if (state === "ended") session.ended(event.detail);
  else if (state === "stale") session.stale(event.detail);
  else showRequestError(xhr);
});

document.addEventListener("htmx:sendError", () => {
  const main = document.querySelector("main");
  if (!main || document.getElementById("request-error")) return;
  const banner = document.createElement("p");
  banner.id = "request-error";
  banner.className = "alert error";
  banner.setAttribute("role", "alert");
  banner.textContent = "The server could not be reached. Check your connection and try again.";
  main.prepend(banner);
});

// On a narrow screen the tabs are one scrolling strip: bring the selected tab into it.
document.querySelectorAll(".tabs [aria-selected=true]").forEach((tab) => {
  const strip = tab.parentElement;
  strip.scrollLeft = tab.offsetLeft - (strip.clientWidth - tab.offsetWidth) / 2;
});

// Toasts: what an action did, for a few seconds. The server sends them in an HX-Trigger
// "toasts" event (staying on the page) or as flashed messages on the next page.
function showToast(message, level) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const toast = document.createElement("p");
  toast.className = `toast ${level || "success"}`;
  toast.textContent = message;
  region.append(toast);
  setTimeout(() => toast.remove(), 6000);
}
document.body.addEventListener("toasts", (event) => {
  const toasts = event.detail.value || [];
  toasts.forEach((toast) => showToast(toast.message, toast.level));
});
document.querySelectorAll("#toasts .toast").forEach((toast) => setTimeout(() => toast.remove(), 6000));

// A form that adds one of several kinds of thing (a trigger) offers only the fields of the
// kind chosen: groups marked data-for-kinds="kv docs" are hidden, and disabled so they are
// not submitted, unless the [data-kind-select] of their form names one of their kinds.
function showFieldsOfKind(select) {
  const form = select.form;
  if (!form) return;
  form.querySelectorAll("[data-for-kinds]").forEach((group) => {
    const shown = group.dataset.forKinds.split(" ").includes(select.value);
    group.hidden = !shown;
    group.querySelectorAll("input, select, textarea").forEach((input) => { input.disabled = !shown; });
  });
}
document.addEventListener("change", (event) => {
  if (event.target.matches?.("[data-kind-select]")) showFieldsOfKind(event.target);
});
function showFieldsOfEveryKindSelect(root) {
  root.querySelectorAll("[data-kind-select]").forEach(showFieldsOfKind);
}
showFieldsOfEveryKindSelect(document);
document.body.addEventListener("htmx:afterSettle", () => showFieldsOfEveryKindSelect(document));
