// What the colourise and guided pages share. A plain script (no modules, no build step) loaded before each
// page's own script; it defines one global, `polychrome`, so that each helper is written once.
"use strict";

window.polychrome = Object.freeze({
  // A function that writes to the status line `element`: say(text) for progress, say(text, true) for an error.
  statusLine(element) {
    return (text, isError = false) => {
      element.textContent = text;
      element.classList.toggle("error", isError);
    };
  },

  // The response when it is OK; otherwise an Error carrying the server's one-line message ({"error": ...}),
  // or the HTTP status line when the body is not JSON.
  async check(response) {
    if (response.ok) return response;
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(message);
  },

  // Wire a drop zone (a <label> around a file <input>): a file chosen or dropped there goes to take(file).
  // The input is emptied after each choice so that choosing the same file again (say, after a refusal)
  // is a change too.
  dropZone(zone, input, take) {
    input.addEventListener("change", () => { take(input.files[0]); input.value = ""; });
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      take(event.dataTransfer.files[0]);
    });
  },
});
