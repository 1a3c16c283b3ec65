// PiCloud dashboard behaviour that htmx does not cover. No inline scripts (CSP).
"use strict";

// Copy buttons: <button data-copy="#selector">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (source) navigator.clipboard?.writeText(source.textContent.trim());
});

// htmx does not swap error responses (see the htmx-config meta tag): show their
// message above the page instead of failing silently.
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
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
