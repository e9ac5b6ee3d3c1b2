// The guided page. A photo is sent once (POST api/guided: the server keeps its L under a token); every
// change of the hints (place, paint a stroke, move, recolour, delete, undo, load a hint file) or of the
// reference photo asks for a new colourisation (POST api/guided/TOKEN/render with the hints as in a hint file,
// docs/hints.md), never more than one request in flight, and the latest state wins: changes made while a
// request runs are coalesced into one, sent as soon as it returns. Hints are kept here, in the photo's own
// pixels, so a refused request, a model change or a new render never loses them; the photo, hints, reference
// and model are also kept in the browser (IndexedDB), so a reload restores the work until "Start over".
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
  const strokes = $("strokes"), cursorMarker = $("cursor"), busy = $("busy"), strokeWidth = $("stroke-width");
  const hintsDrop = $("hints-drop"), hintsFile = $("hints-file"), startOver = $("start-over");
  const uploadLimit = Number(page.dataset.uploadLimit);
  const BUSY_MS = 200; // a render slower than this shows "colouring…"
  const DRAG_PX = 5; // a press that moves this far (screen pixels) paints a stroke; less is a click
  const STROKE_STEP_PX = 3; // screen pixels between a stroke's points: smooth, and far below the server's limit
  const MAX_STROKE_POINTS = 1000; // polychrome.hints.MAX_STROKE_POINTS
  const SVG = "http://www.w3.org/2000/svg";

  // current: what api/guided answered for the photo on show (token, width, height, ...) plus its file.
  // hints: [{x, y, rgb: [r, g, b], patch}] in the photo's pixels; history: earlier copies, for undo.
  let current = null, photo = null, asked = 0;
  // A hint is a click {x, y, rgb, patch} or a stroke {stroke: [[x, y], ...], width, rgb}.
  let hints = [], history = [], selected = -1, lastAction = null;
  let reference = null; // {file, name} of the reference photo sent for the current token
  let changed = 0, sent = 0, inFlight = false, dragging = null, pressing = null;
  let afterRender = null; // what whenRendered holds back until the render in flight is shown
  let brush = null, cursor = [0, 0], clicked = null; // the colour last chosen; the keyboard's cursor; a click's time
  window.guidedTimings = []; // click -> painted, for benchmarks/guided_browser_latency.py
  // The render on show is drawn on the picture canvas, whose pixels are read for a new hint's colour: drawn there
  // from an ImageBitmap (decoded off the page's thread), it is painted sooner than an <img> of the same JPEG.
  const pixels = picture.getContext("2d", { willReadFrequently: true });

  const { check, dropZone } = polychrome, statusLine = polychrome.statusLine(status); // static/common.js
  // A render's routine status must not hide an error said while it was in flight (a refused reference, say):
  // each error is counted, and a render says its line only if none came since it was asked.
  let errorsSaid = 0;
  const say = (text, isError = false) => { if (isError) errorsSaid++; statusLine(text, isError); };

  const hex = (rgb) => "#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join("");
  const rgbOf = (text) => [1, 3, 5].map((i) => parseInt(text.slice(i, i + 2), 16));
  const baseName = (name) => name.replace(/\.[^.]*$/, "");

  // ------------------------------------------------------------------ the photo
  async function open(candidate, restored = null) {
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
      if (newPhoto) {
        hints = restored || []; history = []; selected = -1; lastAction = null;
        cursor = [Math.floor(answer.width / 2), Math.floor(answer.height / 2)];
        clearPalette(); // the suggestions were for the last photo
        keep("photo", { file: candidate, name: candidate.name });
      }
      keep("model", name);
      strokes.setAttribute("viewBox", `0 0 ${answer.width} ${answer.height}`);
      strokes.setAttribute("preserveAspectRatio", "none");
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
    if (reference && current.reference) await sendReference(reference.file, true);
    else showReference();
  }

  // ------------------------------------------------------------------ rendering: debounced, one in flight
  // Changes in one event's handler (a click, its colour and its selection) go as one request, sent as soon as the
  // handler returns (a microtask: a timer let the browser paint a frame first, 6 ms of every click); a change
  // made while one is in flight waits for it, and all such changes go as one (the latest state).
  function change() {
    changed++;
    queueMicrotask(flush); // the first sends; any later one in the same handler finds it in flight
    drawMarkers();
    keep("hints", hints);
  }

  async function flush() {
    if (inFlight || !current) return;
    inFlight = true;
    const entry = current, version = changed, body = JSON.stringify({ hints }), click = clicked;
    const errorsBefore = errorsSaid, quiet = () => errorsSaid !== errorsBefore;
    const slow = setTimeout(() => { // the status must not claim the state on show is the one asked for
      busy.textContent = "colouring…";
      if (!quiet()) say(`Colouring ${entry.file} with ${describe()}…`);
    }, BUSY_MS);
    try {
      const started = performance.now();
      const response = await fetch(`api/guided/${entry.token}/render`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body,
      });
      const answered = performance.now();
      const blob = await (await check(response)).blob();
      const received = performance.now();
      if (entry === current) await show(blob, entry, body, quiet());
      if (click !== null && clicked === click && entry === current) {
        const painted = performance.now();
        clicked = null;
        const steps = Object.fromEntries([...(response.headers.get("Server-Timing") || "")
          .matchAll(/(\w+);dur=([\d.]+)/g)].map(([, step, ms]) => [step, Number(ms)]));
        window.guidedTimings.push({ total: painted - click, queued: started - click, server: answered - started,
          steps, transfer: received - answered, decode: painted - received, bytes: blob.size });
      }
      sent = version;
    } catch (error) {
      if (entry === current) say(`${error.message} (your hints are kept)`, true);
      sent = version;
    } finally {
      clearTimeout(slow);
      busy.textContent = "";
      inFlight = false;
    }
    if (changed !== sent) flush();
    else if (afterRender) {
      const run = afterRender;
      afterRender = null;
      run();
    }
  }

  // Runs fn once no change waits for its render (at once when none does); a later call replaces an earlier one.
  function whenRendered(fn) {
    if (inFlight || changed !== sent) afterRender = fn;
    else setTimeout(fn, 0);
  }

  function describe() {
    const clicks = hints.filter((hint) => !hint.stroke).length, painted = hints.length - clicks;
    const words = `${clicks} hint${clicks === 1 ? "" : "s"}`;
    return painted ? `${words}, ${painted} stroke${painted === 1 ? "" : "s"}` : words;
  }

  async function show(blob, entry, body, quiet) {
    const bitmap = await createImageBitmap(blob);
    if (picture.width !== bitmap.width || picture.height !== bitmap.height) {
      picture.width = bitmap.width;
      picture.height = bitmap.height;
    }
    pixels.drawImage(bitmap, 0, 0);
    bitmap.close();
    board.style.setProperty("--ratio", entry.height / entry.width);
    board.hidden = false;
    download.disabled = downloadHints.disabled = false;
    const shown = entry.display_width === entry.width ? "" : `, shown at ${entry.display_width}×${entry.display_height}`;
    if (!quiet) say(`${entry.file}: ${entry.width}×${entry.height} px${shown}, ${entry.model}, ${describe()}` +
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
    if (!current) return;
    const lines = [];
    hints.forEach((hint, index) => {
      if (!hint.stroke) return;
      const points = hint.stroke.map(([x, y]) => `${x + 0.5},${y + 0.5}`).join(" ");
      const outline = document.createElementNS(SVG, "polyline"), line = document.createElementNS(SVG, "polyline");
      outline.setAttribute("class", "outline" + (index === selected ? " selected" : ""));
      outline.setAttribute("points", points);
      outline.setAttribute("stroke-width", String(hint.width + 2));
      line.setAttribute("points", points);
      line.setAttribute("stroke", hex(hint.rgb));
      line.setAttribute("stroke-width", String(hint.width));
      line.setAttribute("class", "stroke");
      line.dataset.index = String(index);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `stroke ${index + 1}: ${hint.stroke.length} points, ${hint.width} px wide, rgb(${hint.rgb.join(", ")})`;
      line.append(title);
      lines.push(outline, line);
    });
    strokes.replaceChildren(...lines);
    cursorMarker.style.left = `${(cursor[0] + 0.5) / current.width * 100}%`;
    cursorMarker.style.top = `${(cursor[1] + 0.5) / current.height * 100}%`;
    markers.replaceChildren(...hints.flatMap((hint, index) => {
      if (hint.stroke) return [];
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
    count.textContent = hints.length ? `${describe()}.` : "No hints yet.";
  }

  const anchor = (hint) => (hint.stroke ? hint.stroke[0] : [hint.x, hint.y]);

  function pixelAt(event) {
    const box = picture.getBoundingClientRect(), clamp = (v, n) => Math.min(n - 1, Math.max(0, Math.floor(v)));
    return [clamp((event.clientX - box.left) / box.width * current.width, current.width),
      clamp((event.clientY - box.top) / box.height * current.height, current.height)];
  }

  function select(index) {
    selected = index;
    if (index >= 0) cursor = [...anchor(hints[index])];
    drawMarkers();
    // Once the render this change asked for is shown: the palette's request, which nothing waits on, then never
    // takes the server's time from the render a click waits for.
    if (index >= 0) whenRendered(() => selected === index && suggest(hints[index]));
  }

  function place([x, y]) {
    clicked = performance.now();
    remember(`hint:${hints.length}`);
    hints.push({ x, y, rgb: shownColour(x, y), patch: 1 });
    change();
    select(hints.length - 1);
  }

  function recolour(rgb) {
    brush = rgb; // the colour the next stroke paints
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

  // A press on the photo is a click hint when released where it began, a stroke when dragged (painted with
  // the colour last chosen, else the colour on show where it starts); a press on a hint selects it (a click
  // hint can be dragged).
  board.addEventListener("pointerdown", (event) => {
    if (!current || event.button !== 0) return;
    event.preventDefault();
    board.focus({ focusVisible: false });
    board.setPointerCapture(event.pointerId);
    const index = event.target.dataset ? Number(event.target.dataset.index ?? -1) : -1;
    if (index < 0) { pressing = { start: pixelAt(event), from: [event.clientX, event.clientY], stroke: -1 }; return; }
    select(index);
    if (!hints[index].stroke) dragging = { index, moved: false };
  });
  function paint(event) {
    if (pressing.stroke < 0) {
      if (Math.hypot(event.clientX - pressing.from[0], event.clientY - pressing.from[1]) < DRAG_PX) return;
      const [x, y] = pressing.start;
      remember(`hint:${hints.length}`);
      hints.push({ stroke: [[x, y]], width: Math.min(64, Math.max(1, Math.round(Number(strokeWidth.value) || 5))),
        rgb: brush || shownColour(x, y) });
      pressing.stroke = selected = hints.length - 1;
      pressing.from = [Number.NaN, Number.NaN];
    }
    const points = hints[pressing.stroke].stroke, [x, y] = pixelAt(event), last = points[points.length - 1];
    const far = !(Math.hypot(event.clientX - pressing.from[0], event.clientY - pressing.from[1]) < STROKE_STEP_PX);
    if ((x !== last[0] || y !== last[1]) && far && points.length < MAX_STROKE_POINTS) {
      points.push([x, y]);
      pressing.from = [event.clientX, event.clientY];
      change();
    }
  }
  board.addEventListener("pointermove", (event) => {
    if (pressing) { paint(event); return; }
    if (!dragging) return;
    const [x, y] = pixelAt(event), hint = hints[dragging.index];
    if (x === hint.x && y === hint.y) return;
    if (!dragging.moved) { remember("move"); dragging.moved = true; }
    hints[dragging.index] = { ...hint, x, y };
    change();
  });
  const endDrag = (event) => {
    if (pressing) {
      const { start, stroke } = pressing;
      pressing = null;
      if (stroke < 0 && event.type === "pointerup") place(start);
      else if (stroke >= 0) {
        const points = hints[stroke].stroke;
        if (points.length < 2) points.push([...points[0]]); // a stroke is at least two points
        select(stroke);
        change();
      }
    }
    if (dragging && dragging.moved) {
      const index = dragging.index;
      whenRendered(() => hints[index] && suggest(hints[index]));
    }
    dragging = null;
  };
  board.addEventListener("pointerup", endDrag);
  board.addEventListener("pointercancel", endDrag);

  // The keyboard: arrows move the cursor, or the selected click hint; Enter places a hint at the cursor; n / p
  // select the next / previous hint; 1-8 give the selected hint that suggested colour; Escape unselects.
  function nudge(dx, dy) {
    const hint = hints[selected], clamp = (v, n) => Math.min(n - 1, Math.max(0, v));
    if (!hint || hint.stroke) {
      cursor = [clamp(cursor[0] + dx, current.width), clamp(cursor[1] + dy, current.height)];
      drawMarkers();
      return;
    }
    if (lastAction !== `move:${selected}`) remember(`move:${selected}`);
    hints[selected] = { ...hint, x: clamp(hint.x + dx, current.width), y: clamp(hint.y + dy, current.height) };
    cursor = [hints[selected].x, hints[selected].y];
    change();
    clearTimeout(nudge.timer);
    nudge.timer = setTimeout(() => hints[selected] && suggest(hints[selected]), 300);
  }
  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  board.addEventListener("keydown", (event) => {
    if (!current || event.ctrlKey || event.metaKey || event.altKey) return;
    const arrow = ARROWS[event.key], step = event.shiftKey ? 10 : 1;
    if (arrow) nudge(arrow[0] * step, arrow[1] * step);
    else if (event.key === "Enter") place(cursor);
    else if ((event.key === "n" || event.key === "p") && hints.length) {
      select(((selected < 0 && event.key === "p" ? 0 : selected) + (event.key === "n" ? 1 : -1) + hints.length) % hints.length);
    } else if (/^[1-8]$/.test(event.key)) {
      const swatch = palette.children[Number(event.key) - 1];
      if (swatch && selected >= 0) recolour(swatch.dataset.rgb.split(",").map(Number));
    } else if (event.key === "Escape") { selected = -1; clearPalette(); drawMarkers(); }
    else return;
    event.preventDefault();
  });
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
    const [x, y] = anchor(hint);
    paletteCaption.textContent = `Suggested colours at (${x}, ${y})…`;
    try {
      const answer = await (await check(await fetch(`api/guided/${entry.token}/palette?x=${x}&y=${y}`))).json();
      if (question !== suggestion || entry !== current) return;
      palette.replaceChildren(...answer.colors.map(({ rgb, p }, index) => {
        const swatch = document.createElement("button");
        swatch.type = "button";
        swatch.className = "swatch";
        swatch.style.background = hex(rgb);
        swatch.dataset.rgb = rgb.join(",");
        swatch.title = `rgb(${rgb.join(", ")}), p = ${p.toFixed(3)}: ${answer.source} (${answer.model}); key ${index + 1}`;
          swatch.addEventListener("click", () => recolour(rgb));
        return swatch;
      }));
      paletteCaption.textContent = `Suggested at (${x}, ${y}): ${answer.source} (${answer.model}), most likely first.`;
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
  // adopting: sending the reference already chosen to a new token (a new photo or model), which has none until
  // it is accepted; otherwise a refused reference leaves the one in use (and its label) as it was.
  async function sendReference(candidate, adopting = false) {
    if (!candidate) return;
    if (!current) { // kept until a photo is open
      reference = { file: candidate, name: candidate.name };
      referenceStatus.textContent = `Reference: ${candidate.name} (used once a photo is open)`;
      removeReference.hidden = false;
      keep("reference", reference);
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
      keep("reference", reference);
      showReference();
      change();
    } catch (error) {
      if (adopting && entry === current) { reference = null; keep("reference", null); }
      showReference();
      say(`reference ${candidate.name}: ${error.message}`, true);
    }
  }

  function showReference() {
    referenceStatus.textContent = reference ? `Reference: ${reference.name}` : "";
    removeReference.hidden = !reference;
  }

  removeReference.addEventListener("click", async () => {
    if (!current) { reference = null; keep("reference", null); showReference(); return; }
    try {
      await check(await fetch(`api/guided/${current.token}/reference`, { method: "DELETE" }));
      reference = null;
      keep("reference", null);
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
    const document_ = { hints: hints.map((hint) => (hint.stroke
      ? { stroke: hint.stroke, width: hint.width, rgb: hint.rgb }
      : { x: hint.x, y: hint.y, rgb: hint.rgb, patch: hint.patch })) };
    if (reference && current.reference) document_.reference = reference.name;
    const text = JSON.stringify(document_, null, 2) + "\n";
    save(new Blob([text], { type: "application/json" }), `${baseName(current.file)}-hints.json`);
  });

  // A hint file (the download's format, or any hint file of docs/hints.md): the server's parser checks it (a
  // refusal names the entry, as for the command line) before it replaces the hints on show.
  async function loadHints(candidate) {
    if (!candidate) return;
    if (!current) { say(`${candidate.name}: open a photo first, then load its hints`, true); return; }
    const entry = current;
    let loaded;
    try {
      loaded = JSON.parse(await candidate.text());
    } catch (error) {
      say(`${candidate.name}: not valid JSON (${error.message}); choose a hint file (docs/hints.md)`, true);
      return;
    }
    const list = Array.isArray(loaded) ? loaded : loaded && Array.isArray(loaded.hints) ? loaded.hints : null;
    if (!list) {
      say(`${candidate.name}: not a hint file; give a list of hints or {"hints": [...], "reference": "photo.jpg"}`, true);
      return;
    }
    const whole = (v) => (typeof v === "number" ? Math.floor(v) : v);
    const entries = list.map((hint) => (Array.isArray(hint) // the tuple form (x, y, rgb[, patch])
      ? { x: hint[0], y: hint[1], rgb: hint[2], patch: hint.length > 3 ? hint[3] : 1 }
      : hint));
    try {
      await check(await fetch(`api/guided/${entry.token}/render`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ hints: entries }),
      }));
    } catch (error) {
      say(`${candidate.name}: ${error.message}`, true);
      return;
    }
    if (entry !== current) return;
    remember("load");
    hints = entries.map((hint) => (hint.stroke
      ? { stroke: hint.stroke.map(([x, y]) => [whole(x), whole(y)]), width: hint.width, rgb: hint.rgb }
      : { x: whole(hint.x), y: whole(hint.y), rgb: hint.rgb, patch: hint.patch ?? 1 }));
    selected = -1;
    clearPalette();
    change();
    if (loaded.reference && !(reference && reference.name === loaded.reference)) {
      referenceStatus.textContent = `${candidate.name} names the reference ${loaded.reference}: choose it here to use it`;
    }
  }

  // ------------------------------------------------------------------ kept in the browser (IndexedDB)
  // Keys: photo {file, name}, model, hints, reference {file, name} or null. Writes go in order; Start over
  // stops them and clears the store.
  let database = null, writes = Promise.resolve(), forgetting = false;
  function store(mode, act) {
    database ??= new Promise((resolve, reject) => {
      const request = indexedDB.open("polychrome-guided", 1);
      request.onupgradeneeded = () => request.result.createObjectStore("work");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return database.then((db) => new Promise((resolve, reject) => {
      const transaction = db.transaction("work", mode), request = act(transaction.objectStore("work"));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
    }));
  }
  function keep(key, value) {
    if (forgetting) return;
    const copy = key === "hints" ? JSON.parse(JSON.stringify(value)) : value;
    writes = writes.then(() => store("readwrite", (work) => work.put(copy, key))).catch(() => { /* private mode: not kept */ });
  }
  async function restore() {
    let kept;
    try {
      kept = await store("readonly", (work) => work.get("photo"));
      if (!kept) return;
      const [name, saved, chosen] = await Promise.all(["model", "hints", "reference"].map(
        (key) => store("readonly", (work) => work.get(key))));
      if ([...model.options].some((option) => option.value === name)) model.value = name;
      referenceBox.hidden = model.selectedOptions[0].dataset.reference !== "true";
      if (chosen) reference = { file: new File([chosen.file], chosen.name), name: chosen.name };
      await open(new File([kept.file], kept.name, { type: kept.file.type }), saved || []);
    } catch (error) {
      say(`Could not restore your last work (${error.message}); open a photo`, true);
    }
  }
  startOver.addEventListener("click", async () => {
    forgetting = true;
    await writes;
    try { await store("readwrite", (work) => work.clear()); } catch (_) { /* nothing kept */ }
    location.reload();
  });

  // ------------------------------------------------------------------ choosing files
  dropZone(drop, file, (candidate) => open(candidate));
  dropZone(referenceDrop, referenceFile, (candidate) => sendReference(candidate));
  dropZone(hintsDrop, hintsFile, loadHints);
  model.addEventListener("change", () => open(photo));
  referenceBox.hidden = model.selectedOptions[0].dataset.reference !== "true";
  restore();
})();
