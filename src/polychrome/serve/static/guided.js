// The guided page. A photo is sent once (POST api/guided: the server keeps its L under a token); every
// change of the hints (place, move, recolour, delete, undo) or of the reference photo asks for a new
// colourisation (POST api/guided/TOKEN/render with the hints as in a hint file, docs/hints.md), debounced,
// never more than one request in flight, and the latest state wins: a change made while a request runs
// is sent as soon as it returns. Hints are kept here, in the photo's own pixels, so a refused request,
// a model change or a new render never loses them.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const page = $("guided"), file = $("file"), drop = $("drop"), model = $("model"), status = $("status");
  const board = $("board"), picture = $("picture"), markers = $("markers");
  const palette = $("palette"), paletteCaption = $("palette-caption"), picker = $("picker");
  const deleteButton = $("delete"), undoButton = $("undo"), count = $("count");
  const referenceBox = $("reference-box"), referenceDrop = $("reference-drop"), referenceFile = $("reference-file");
  const referenceStatus = $("reference-status"), removeReference = $("remove-reference"), referenceNote = $("reference-note");
  const download = $("download"), downloadHints = $("download-hints");
  const uploadLimit = Number(page.dataset.uploadLimit);
  const DEBOUNCE_MS = 60;

  // current: what api/guided answered for the photo on show (token, width, height, ...) plus its file.
  // hints: [{x, y, rgb: [r, g, b], patch}] in the photo's pixels; history: earlier copies, for undo.
  let current = null, photo = null, asked = 0;
  let hints = [], history = [], selected = -1, lastAction = null;
  let reference = null; // {file, name} of the reference photo sent for the current token
  let changed = 0, sent = 0, inFlight = false, timer = null, url = null, dragging = null;
  const pixels = document.createElement("canvas").getContext("2d", { willReadFrequently: true });

  const say = polychrome.statusLine(status), { check, dropZone } = polychrome; // static/common.js

  const hex = (rgb) => "#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join("");
  const rgbOf = (text) => [1, 3, 5].map((i) => parseInt(text.slice(i, i + 2), 16));
  const baseName = (name) => name.replace(/\.[^.]*$/, "");

  // ------------------------------------------------------------------ the photo
  async function open(candidate) {
    if (!candidate) return;
    if (candidate.size > uploadLimit) {
      say(`${candidate.name} is ${(candidate.size / 2 ** 20).toFixed(1)} MiB, above this server's limit of ${(uploadLimit / 2 ** 20).toFixed(1)} MiB; choose a smaller file`, true);
      return;
    }
    const question = ++asked, name = model.value, newPhoto = candidate !== photo;
    say(`Opening ${candidate.name} with ${name}…`);
    const form = new FormData();
    form.append("image", candidate);
    form.append("model", name);
    try {
      const answer = await (await check(await fetch("api/guided", { method: "POST", body: form }))).json();
      if (question !== asked) return;
      current = { ...answer, file: candidate.name };
      photo = candidate;
      if (newPhoto) { hints = []; history = []; selected = -1; lastAction = null; }
      await adoptReference();
      drawMarkers();
      change();
    } catch (error) {
      if (question === asked) say(`${candidate.name}: ${error.message}`, true);
    }
  }

  // A new token knows no reference: send the one chosen, if the model takes one.
  async function adoptReference() {
    referenceBox.hidden = !current.reference;
    referenceNote.hidden = current.reference;
    referenceNote.textContent = `${current.model} takes no reference photo (no global hints); choose a model that does to use one.`;
    if (reference && current.reference) await sendReference(reference.file);
    else showReference();
  }

  // ------------------------------------------------------------------ rendering: debounced, one in flight
  function change() {
    changed++;
    clearTimeout(timer);
    timer = setTimeout(flush, DEBOUNCE_MS);
    drawMarkers();
  }

  async function flush() {
    if (inFlight || !current) return;
    inFlight = true;
    const entry = current, version = changed, body = JSON.stringify({ hints });
    try {
      const response = await fetch(`api/guided/${entry.token}/render`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body,
      });
      const blob = await (await check(response)).blob();
      if (entry === current) await show(blob, entry, body);
      sent = version;
    } catch (error) {
      if (entry === current) say(`${error.message} (your hints are kept)`, true);
      sent = version;
    } finally {
      inFlight = false;
    }
    if (changed !== sent) flush();
  }

  async function show(blob, entry, body) {
    const previous = url;
    url = URL.createObjectURL(blob);
    picture.src = url;
    await picture.decode();
    if (previous) URL.revokeObjectURL(previous);
    pixels.canvas.width = picture.naturalWidth;
    pixels.canvas.height = picture.naturalHeight;
    pixels.drawImage(picture, 0, 0);
    board.style.setProperty("--ratio", entry.height / entry.width);
    board.hidden = false;
    download.disabled = downloadHints.disabled = false;
    const shown = entry.display_width === entry.width ? "" : `, shown at ${entry.display_width}×${entry.display_height}`;
    say(`${entry.file}: ${entry.width}×${entry.height} px${shown}, ${entry.model}, ${hints.length} hint${hints.length === 1 ? "" : "s"}` +
      (reference && entry.reference ? `, reference ${reference.name}` : ""));
    picture.dataset.hints = body; // what the image on show was made from (the tests wait for it)
  }

  // The colour on show at a photo pixel (from the display-size render).
  function shownColour(x, y) {
    const u = Math.floor((x + 0.5) / current.width * pixels.canvas.width);
    const v = Math.floor((y + 0.5) / current.height * pixels.canvas.height);
    return Array.from(pixels.getImageData(u, v, 1, 1).data.slice(0, 3));
  }

  // ------------------------------------------------------------------ hints: place, move, recolour, delete, undo
  function remember(action) {
    history.push(JSON.stringify(hints));
    lastAction = action;
  }

  function drawMarkers() {
    markers.replaceChildren(...hints.map((hint, index) => {
      const marker = document.createElement("span");
      marker.className = "hint-marker" + (index === selected ? " selected" : "");
      marker.dataset.index = String(index);
      marker.style.left = `${(hint.x + 0.5) / current.width * 100}%`;
      marker.style.top = `${(hint.y + 0.5) / current.height * 100}%`;
      marker.style.background = hex(hint.rgb);
      marker.title = `hint ${index + 1} at (${hint.x}, ${hint.y}), rgb(${hint.rgb.join(", ")})`;
      return marker;
    }));
    const hint = hints[selected];
    picker.disabled = deleteButton.disabled = !hint;
    if (hint) picker.value = hex(hint.rgb);
    undoButton.disabled = history.length === 0;
    count.textContent = hints.length ? `${hints.length} hint${hints.length === 1 ? "" : "s"}.` : "No hints yet.";
  }

  function pixelAt(event) {
    const box = picture.getBoundingClientRect(), clamp = (v, n) => Math.min(n - 1, Math.max(0, Math.floor(v)));
    return [clamp((event.clientX - box.left) / box.width * current.width, current.width),
      clamp((event.clientY - box.top) / box.height * current.height, current.height)];
  }

  function select(index) {
    selected = index;
    drawMarkers();
    if (index >= 0) suggest(hints[index]);
  }

  function place(event) {
    const [x, y] = pixelAt(event);
    remember(`hint:${hints.length}`);
    hints.push({ x, y, rgb: shownColour(x, y), patch: 1 });
    select(hints.length - 1);
    change();
  }

  function recolour(rgb) {
    if (selected < 0) return;
    // Colours picked for the hint just placed or recoloured are one action with it, for undo.
    if (lastAction !== `hint:${selected}`) remember(`hint:${selected}`);
    hints[selected] = { ...hints[selected], rgb };
    change();
  }

  function removeSelected() {
    if (selected < 0) return;
    remember("delete");
    hints.splice(selected, 1);
    selected = -1;
    clearPalette();
    change();
  }

  function undo() {
    if (!history.length) return;
    hints = JSON.parse(history.pop());
    lastAction = null;
    selected = Math.min(selected, hints.length - 1);
    if (selected < 0) clearPalette();
    change();
  }

  board.addEventListener("pointerdown", (event) => {
    if (!current || event.button !== 0) return;
    event.preventDefault();
    board.focus();
    const index = event.target.dataset ? Number(event.target.dataset.index ?? -1) : -1;
    if (index < 0) { place(event); return; }
    select(index);
    dragging = { index, moved: false };
    board.setPointerCapture(event.pointerId);
  });
  board.addEventListener("pointermove", (event) => {
    if (!dragging) return;
    const [x, y] = pixelAt(event), hint = hints[dragging.index];
    if (x === hint.x && y === hint.y) return;
    if (!dragging.moved) { remember("move"); dragging.moved = true; }
    hints[dragging.index] = { ...hint, x, y };
    change();
  });
  const endDrag = () => {
    if (dragging && dragging.moved) suggest(hints[dragging.index]);
    dragging = null;
  };
  board.addEventListener("pointerup", endDrag);
  board.addEventListener("pointercancel", endDrag);
  document.addEventListener("keydown", (event) => {
    if (!current || event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") { event.preventDefault(); undo(); }
    else if ((event.key === "Delete" || event.key === "Backspace") && selected >= 0) { event.preventDefault(); removeSelected(); }
  });
  picker.addEventListener("input", () => recolour(rgbOf(picker.value)));
  deleteButton.addEventListener("click", removeSelected);
  undoButton.addEventListener("click", undo);

  // ------------------------------------------------------------------ the palette
  let suggestion = 0;
  async function suggest(hint) {
    const question = ++suggestion, entry = current;
    paletteCaption.textContent = `Suggested colours at (${hint.x}, ${hint.y})…`;
    try {
      const answer = await (await check(await fetch(`api/guided/${entry.token}/palette?x=${hint.x}&y=${hint.y}`))).json();
      if (question !== suggestion || entry !== current) return;
      palette.replaceChildren(...answer.colors.map(({ rgb, p }) => {
        const swatch = document.createElement("button");
        swatch.type = "button";
        swatch.className = "swatch";
        swatch.style.background = hex(rgb);
        swatch.dataset.rgb = rgb.join(",");
        swatch.title = `rgb(${rgb.join(", ")}), p = ${p.toFixed(3)}: ${answer.source} (${answer.model})`;
        swatch.addEventListener("click", () => recolour(rgb));
        return swatch;
      }));
      paletteCaption.textContent = `Suggested at (${hint.x}, ${hint.y}): ${answer.source} (${answer.model}), most likely first.`;
    } catch (error) {
      if (question === suggestion) paletteCaption.textContent = `No suggestions: ${error.message}`;
    }
  }

  function clearPalette() {
    suggestion++;
    palette.replaceChildren();
    paletteCaption.textContent = "Suggested colours appear here when you place or select a hint.";
  }

  // ------------------------------------------------------------------ the reference photo
  async function sendReference(candidate) {
    if (!candidate) return;
    if (!current) { // kept until a photo is open
      reference = { file: candidate, name: candidate.name };
      referenceStatus.textContent = `Reference: ${candidate.name} (used once a photo is open)`;
      removeReference.hidden = false;
      return;
    }
    const entry = current, form = new FormData();
    form.append("image", candidate);
    form.append("name", candidate.name);
    referenceStatus.textContent = `Reading ${candidate.name}…`;
    try {
      await check(await fetch(`api/guided/${entry.token}/reference`, { method: "PUT", body: form }));
      if (entry !== current) return;
      reference = { file: candidate, name: candidate.name };
      showReference();
      change();
    } catch (error) {
      referenceStatus.textContent = "";
      say(`reference ${candidate.name}: ${error.message}`, true);
    }
  }

  function showReference() {
    referenceStatus.textContent = reference ? `Reference: ${reference.name}` : "";
    removeReference.hidden = !reference;
  }

  removeReference.addEventListener("click", async () => {
    if (!current) { reference = null; showReference(); return; }
    try {
      await check(await fetch(`api/guided/${current.token}/reference`, { method: "DELETE" }));
      reference = null;
      showReference();
      change();
    } catch (error) {
      say(error.message, true);
    }
  });

  // ------------------------------------------------------------------ downloads
  function save(blob, name) {
    const link = document.createElement("a"), address = URL.createObjectURL(blob);
    link.href = address;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(address), 10_000);
  }

  download.addEventListener("click", async () => {
    const entry = current;
    say(`Rendering ${entry.file} at ${entry.width}×${entry.height}…`);
    try {
      const response = await fetch(`api/guided/${entry.token}/render?full=true`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ hints }),
      });
      save(await (await check(response)).blob(), `${baseName(entry.file)}-guided.png`);
      say(`Saved ${baseName(entry.file)}-guided.png (${entry.width}×${entry.height}).`);
    } catch (error) {
      say(error.message, true);
    }
  });

  // The hint file format of docs/hints.md: `polychrome colorize PHOTO --hints FILE.json` reproduces the result
  // (with the reference photo saved beside the file under its own name).
  downloadHints.addEventListener("click", () => {
    const document_ = { hints: hints.map(({ x, y, rgb, patch }) => ({ x, y, rgb, patch })) };
    if (reference && current.reference) document_.reference = reference.name;
    const text = JSON.stringify(document_, null, 2) + "\n";
    save(new Blob([text], { type: "application/json" }), `${baseName(current.file)}-hints.json`);
  });

  // ------------------------------------------------------------------ choosing files
  dropZone(drop, file, open);
  dropZone(referenceDrop, referenceFile, sendReference);
  model.addEventListener("change", () => open(photo));
  referenceBox.hidden = model.selectedOptions[0].dataset.reference !== "true";
})();
