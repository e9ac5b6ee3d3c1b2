// The colourise page. A photo is sent once (POST api/predict, one forward pass); every temperature is
// then a re-decoding of the server's cached prediction (GET api/render/TOKEN), and a click, tap or arrow
// key asks for one pixel's distribution over the ab bins (GET api/distribution/TOKEN), drawn here on the
// ab plane. What the page shows always belongs to one accepted upload: a file the server (or the size
// check here) refuses leaves the photo on show, its name and its Download as they were.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const page = $("colorize"), file = $("file"), drop = $("drop"), model = $("model");
  const slider = $("temperature"), shownTemperature = $("temperature-value"), origin = $("temperature-origin");
  const split = $("split"), compare = $("compare"), before = $("before"), result = $("result"), marker = $("marker");
  const status = $("status"), note = $("note"), download = $("download");
  const figure = $("distribution-figure"), canvas = $("distribution"), caption = $("dist-top");
  const uploadLimit = Number(page.dataset.uploadLimit);
  const GRID = 10, RANGE = 120; // ab bin spacing and the half-width of the plotted ab plane
  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  const HINT = caption.textContent;

  // photo: the accepted File; current: what api/predict answered for it, plus its file name. The two
  // change together, only when the server accepts an upload. pending: a File sent and not yet answered
  // (a model chosen meanwhile applies to it).
  let photo = null, current = null, pending = null, url = null, asked = 0;
  let rendering = false, renderAgain = false;
  let adopted = null, applies = false; // the model whose facts the controls show; whether it takes a temperature
  let inspected = null, looked = 0; // the pixel whose distribution is shown, and a counter of asks for one

  const say = polychrome.statusLine(status), { check, dropZone } = polychrome; // static/common.js

  // A file's size and the limit in words a person can compare: MiB, with the bytes too where the MiB
  // read the same ("25.0 MiB (26,214,401 bytes)", as the server words it).
  function comparableSizes(size, limit) {
    const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`, exact = (n) => `${mib(n)} (${n.toLocaleString("en")} bytes)`;
    const words = mib(size) === mib(limit) ? exact : mib;
    return [words(size), words(limit)];
  }

  // A refused upload or model choice: say why, and that the photo on show (if any) stays.
  function refuse(text) {
    const kept = current ? ` Still showing ${current.file} (${current.name}).` : "";
    say(`${text.replace(/\.$/, "")}.${kept}`, true);
    if (current) model.value = current.name;
  }

  async function predict(candidate) {
    if (!candidate) return;
    if (candidate.size > uploadLimit) {
      const [size, limit] = comparableSizes(candidate.size, uploadLimit);
      refuse(`${candidate.name} is ${size}, above this server's limit of ${limit}; choose a smaller file`);
      return;
    }
    say(`Colourising ${candidate.name} with ${model.value}…`);
    const question = ++asked; // a newer upload or model choice makes this answer stale
    pending = candidate;
    const form = new FormData();
    form.append("image", candidate);
    form.append("model", model.value);
    try {
      const answer = await (await check(await fetch("api/predict", { method: "POST", body: form }))).json();
      if (question !== asked) return;
      pending = null;
      photo = candidate;
      current = { ...answer, file: candidate.name };
      adoptModel(current);
      clearDistribution();
      await render();
    } catch (error) {
      if (question !== asked) return;
      pending = null;
      refuse(`${candidate.name}: ${error.message}`);
    }
  }

  // The controls for a model's facts ({name, head, temperature}, from api/models or api/predict). The
  // slider moves to the model's own temperature, saying so, only when the model changes: a new photo
  // with the same model keeps the temperature chosen.
  function adoptModel(facts) {
    const classification = facts.head === "classification";
    slider.disabled = !classification || !current;
    note.hidden = classification;
    note.textContent = classification ? "" :
      `${facts.name} predicts colours directly (regression): it has no temperature and no distribution to show.`;
    figure.classList.toggle("disabled", !classification);
    origin.hidden = !classification;
    if (facts.name === adopted) return;
    const was = applies ? shownTemperature.textContent : null, first = adopted === null;
    adopted = facts.name;
    applies = classification;
    if (!classification) { shownTemperature.textContent = "does not apply"; return; }
    setTemperature(facts.temperature);
    const own = shownTemperature.textContent;
    origin.textContent = first ? `${own} is ${facts.name}'s own temperature.` :
      `Set to ${own}, ${facts.name}'s own temperature` + (was && was !== own ? ` (was ${was}).` : ".");
  }

  // One render at a time; slider moves during a render are folded into one more render at the end.
  async function render() {
    if (rendering) { renderAgain = true; return; }
    rendering = true;
    try {
      let entry;
      do {
        renderAgain = false;
        entry = current;
        const temperature = slider.disabled ? "" : slider.value;
        const query = temperature ? `?temperature=${temperature}` : "";
        const blob = await (await check(await fetch(`api/render/${entry.token}${query}`))).blob();
        await show(blob, temperature, entry);
      } while (renderAgain);
      say(`${entry.file}: ${entry.width}×${entry.height} px, ${entry.name}` + (slider.disabled ? "" : `, temperature ${shownTemperature.textContent}`));
    } catch (error) {
      say(error.message, true);
    } finally {
      rendering = false;
    }
  }

  async function show(blob, temperature, entry) {
    const previous = url;
    url = URL.createObjectURL(blob);
    result.src = before.src = download.href = url;
    await result.decode();
    if (previous) URL.revokeObjectURL(previous);
    result.dataset.temperature = temperature;
    compare.style.setProperty("--ratio", entry.height / entry.width);
    download.download = `${entry.file.replace(/\.[^.]*$/, "")}-colourised.png`;
    compare.hidden = download.hidden = false;
  }

  function setTemperature(value) {
    slider.value = value;
    shownTemperature.textContent = Number(slider.value).toFixed(2);
  }

  const inspectable = () => current && current.head === "classification";

  // The pixel under a click or tap, in the photo's own coordinates.
  function pixelAt(event) {
    const box = result.getBoundingClientRect();
    return [(event.clientX - box.left) / box.width * current.width, (event.clientY - box.top) / box.height * current.height];
  }

  // Arrow keys move the marker by a fiftieth of the photo's longer side (Shift: by one pixel); the
  // first press puts it in the middle.
  function pixelAfter(key, shiftKey) {
    if (!inspected) return [current.width / 2, current.height / 2];
    const stride = shiftKey ? 1 : Math.max(1, Math.round(Math.max(current.width, current.height) / 50));
    const [dx, dy] = ARROWS[key];
    return [inspected[0] + dx * stride, inspected[1] + dy * stride];
  }

  async function inspect(pixel) {
    const entry = current, clamp = (v, n) => Math.min(n - 1, Math.max(0, Math.floor(v)));
    const [x, y] = inspected = [clamp(pixel[0], entry.width), clamp(pixel[1], entry.height)];
    marker.style.left = `${(x + 0.5) / entry.width * 100}%`;
    marker.style.top = `${(y + 0.5) / entry.height * 100}%`;
    marker.hidden = false;
    const question = ++looked; // held arrow keys ask faster than answers come: draw only the latest
    try {
      const shown = await (await check(await fetch(`api/distribution/${entry.token}?x=${x}&y=${y}`))).json();
      if (question !== looked || entry !== current) return;
      drawDistribution(shown);
      const [a, b] = shown.top;
      caption.textContent = `pixel (${x}, ${y}): most likely ab = (${a}, ${b}), p = ${shown.top_p.toFixed(3)}`;
      // On a phone the figure sits below the photo, off-screen: bring it into view.
      const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
      figure.scrollIntoView({ block: "nearest", behavior: still ? "auto" : "smooth" });
    } catch (error) {
      say(error.message, true);
    }
  }

  function clearDistribution() {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    marker.hidden = true;
    inspected = null;
    looked++;
    caption.textContent = HINT;
  }

  // Zhang et al.'s per-pixel figure: each ab bin a square in its colour at L = 50, faded by its
  // probability on a log scale spanning three decades below the most likely bin.
  function drawDistribution({ bins, p, colors, top }) {
    const context = canvas.getContext("2d"), scale = canvas.width / (2 * RANGE), side = GRID * scale;
    const toCanvas = ([a, b]) => [(a + RANGE) * scale - side / 2, (RANGE - b) * scale - side / 2];
    const highest = Math.max(...p);
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.strokeStyle = "#bbb";
    context.beginPath();
    context.moveTo(canvas.width / 2, 0); context.lineTo(canvas.width / 2, canvas.height);
    context.moveTo(0, canvas.height / 2); context.lineTo(canvas.width, canvas.height / 2);
    context.stroke();
    bins.forEach((bin, i) => {
      const strength = Math.min(1, Math.max(0, 1 + Math.log10(Math.max(p[i] / highest, 1e-12)) / 3));
      context.globalAlpha = 0.06 + 0.94 * strength;
      context.fillStyle = colors[i];
      context.fillRect(...toCanvas(bin), side, side);
    });
    context.globalAlpha = 1;
    context.strokeStyle = "#000";
    context.lineWidth = 2;
    context.strokeRect(...toCanvas(top), side, side);
    context.fillStyle = "#555";
    context.font = "12px sans-serif";
    context.fillText("+a", canvas.width - 18, canvas.height / 2 - 4);
    context.fillText("+b", canvas.width / 2 + 4, 12);
  }

  // Before any upload the temperature shown is the selected model's own, from the server's list.
  async function describeModels() {
    try {
      const facts = await (await check(await fetch("api/models"))).json();
      const byName = new Map(facts.map((entry) => [entry.name, entry]));
      const showSelected = () => { if (!current && byName.has(model.value)) adoptModel(byName.get(model.value)); };
      model.addEventListener("change", showSelected);
      showSelected();
    } catch (error) {
      say(`cannot describe this server's models: ${error.message}`, true);
    }
  }

  dropZone(drop, file, predict);
  model.addEventListener("change", () => predict(pending || photo));
  slider.addEventListener("input", () => {
    setTemperature(slider.value);
    if (current) render();
  });
  split.addEventListener("input", () => compare.style.setProperty("--split", `${split.value}%`));
  compare.addEventListener("click", (event) => { if (inspectable()) inspect(pixelAt(event)); });
  compare.addEventListener("keydown", (event) => {
    if (!(event.key in ARROWS) || !inspectable()) return;
    event.preventDefault(); // the arrows move the marker, not the page
    inspect(pixelAfter(event.key, event.shiftKey));
  });
  describeModels();
})();
