// PiCloud dashboard behaviour that htmx does not cover. No inline scripts (CSP).
"use strict";

// Copy buttons: <button data-copy="#selector">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (source) navigator.clipboard?.writeText(source.textContent.trim());
});
