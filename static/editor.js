// The script editor: CodeMirror with Lua highlighting that saves in place.
// Ctrl-S / Cmd-S or the Save button post the source through htmx (no page reload);
// a compile error comes back in #save-status with its line, which is marked here.
"use strict";

(function () {
  const textarea = document.querySelector("textarea[data-editor]");
  if (!textarea || !window.CodeMirror) return;

  const form = textarea.form;
  const readOnly = textarea.dataset.readonly === "true";
  const editor = window.CodeMirror.fromTextArea(textarea, {
    mode: "lua",
    lineNumbers: true,
    matchBrackets: true,
    autoCloseBrackets: !readOnly,
    indentUnit: 2,
    tabSize: 2,
    indentWithTabs: false,
    readOnly: readOnly,
    extraKeys: {
      "Ctrl-S": save,
      "Cmd-S": save,
      Tab: (cm) => cm.execCommand(cm.somethingSelected() ? "indentMore" : "insertSoftTab"),
    },
  });

  const unsaved = document.getElementById("unsaved");
  let savedGeneration = editor.changeGeneration();
  let pendingGeneration = null;
  let errorLine = null;
  let errorWidget = null;

  function save() {
    if (readOnly) return;
    editor.save();
    pendingGeneration = editor.changeGeneration();
    form.requestSubmit();
  }

  function clearError() {
    if (errorLine !== null) editor.removeLineClass(errorLine, "background", "cm-error-line");
    if (errorWidget) errorWidget.clear();
    errorLine = errorWidget = null;
  }

  function markError(line, message) {
    clearError();
    const index = Math.min(Math.max(line - 1, 0), editor.lineCount() - 1);
    errorLine = editor.addLineClass(index, "background", "cm-error-line");
    if (message) {
      const note = document.createElement("div");
      note.className = "cm-error-note";
      note.setAttribute("role", "alert");
      note.textContent = "Line " + line + ": " + message;
      errorWidget = editor.addLineWidget(index, note, { coverGutter: false, noHScroll: true });
    }
    editor.scrollIntoView({ line: index, ch: 0 }, 80);
  }

  function showUnsaved() {
    if (unsaved) unsaved.hidden = editor.isClean(savedGeneration);
  }

  // htmx reads the form before CodeMirror copies its text back: send the editor's text.
  form.addEventListener("htmx:configRequest", (event) => {
    event.detail.parameters.source = editor.getValue();
  });

  // The test console runs the editor's text (saved or not) while its "draft" box is ticked.
  document.body.addEventListener("htmx:configRequest", (event) => {
    const consoleForm = event.detail.elt.closest?.("#console form");
    if (!consoleForm || consoleForm.elements.draft?.checked !== true) return;
    event.detail.parameters.source = editor.getValue();
  });

  let lastStatus = document.getElementById("save-status");
  document.body.addEventListener("htmx:afterSettle", () => {
    const status = document.getElementById("save-status");
    if (!status || status === lastStatus) return;
    lastStatus = status;
    if (status.dataset.errorLine) {
      markError(Number(status.dataset.errorLine), status.dataset.errorMessage);
    } else if (!status.dataset.errorMessage) {
      clearError();
      if (pendingGeneration !== null) savedGeneration = pendingGeneration;
      showUnsaved();
    }
    pendingGeneration = null;
  });

  editor.on("change", showUnsaved);

  // Unsaved text is kept in this browser as a draft until it is saved, so a session
  // that ends, a closed tab or a crash loses nothing; the page offers it back on load.
  const draftKey = "picloud.draft:" + form.getAttribute("action");
  const loadedSource = editor.getValue();

  function keepDraft() {
    try {
      if (editor.isClean(savedGeneration)) localStorage.removeItem(draftKey);
      else localStorage.setItem(draftKey, JSON.stringify({ source: editor.getValue(), at: Date.now() }));
    } catch (error) { /* storage full or disabled: the unsaved guard still warns */ }
  }

  function offerDraft() {
    let draft = null;
    try { draft = JSON.parse(localStorage.getItem(draftKey) || "null"); } catch (error) { draft = null; }
    if (!draft || typeof draft.source !== "string" || draft.source === loadedSource) return;
    const notice = document.createElement("p");
    notice.className = "alert warning draft-notice";
    notice.setAttribute("role", "status");
    notice.append(`An unsaved draft from ${new Date(draft.at).toLocaleString()} is kept in this browser. `);
    const restore = document.createElement("button");
    restore.type = "button";
    restore.textContent = "Restore draft";
    const discard = document.createElement("button");
    discard.type = "button";
    discard.className = "link";
    discard.textContent = "Discard it";
    notice.append(restore, " ", discard);
    restore.addEventListener("click", () => { editor.setValue(draft.source); notice.remove(); });
    discard.addEventListener("click", () => { localStorage.removeItem(draftKey); notice.remove(); });
    form.before(notice);
  }

  if (!readOnly) {
    offerDraft();
    editor.on("change", keepDraft);
    document.body.addEventListener("htmx:afterSettle", keepDraft);
    // Leaving with unsaved edits asks first (the browser shows its own question).
    window.addEventListener("beforeunload", (event) => {
      if (editor.isClean(savedGeneration)) return;
      event.preventDefault();
      event.returnValue = "";
    });
  }

  // Ctrl-S anywhere on the page saves the script instead of saving the web page.
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented) return; // the editor's own key map handled it
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
      event.preventDefault();
      save();
    }
  });

  // Opened from a run's error (?line=N): show that line.
  if (textarea.dataset.errorLine) markError(Number(textarea.dataset.errorLine), null);
})();
