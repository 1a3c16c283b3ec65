// Confirm dialogs and typed confirmations, for pages that need them. No inline scripts (CSP).
"use strict";

(function () {
  // <button data-open-dialog="#id"> opens that <dialog>; [data-close-dialog] closes its own.
  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.querySelector(opener.dataset.openDialog);
      if (dialog && !dialog.open) dialog.showModal();
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog")?.close();
  });

  // In a <form data-dialog-form="#id">, Enter opens the dialog instead of submitting
  // without the confirmation; with no dialog offered yet, it does nothing.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.target.tagName !== "INPUT") return;
    const form = event.target.closest("form[data-dialog-form]");
    if (!form || event.target.closest("dialog")) return;
    event.preventDefault();
    form.querySelector("[data-open-dialog]")?.click();
  });

  // <input data-must-equal="text" data-enables="#button">: the button works once the
  // text is typed exactly (the server checks it again).
  function syncTypedConfirmation(input) {
    const button = document.querySelector(input.dataset.enables);
    if (button) button.disabled = input.value.trim() !== input.dataset.mustEqual;
  }
  document.addEventListener("input", (event) => {
    if (event.target.matches?.("[data-must-equal]")) syncTypedConfirmation(event.target);
  });
  document.querySelectorAll("[data-must-equal]").forEach(syncTypedConfirmation);
})();
