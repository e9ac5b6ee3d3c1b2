// The colourise page. A photo is sent once (POST api/predict, one forward pass); every temperature is
// then a re-decoding of the server's cached prediction (GET api/render/TOKEN), and a click asks for one
// pixel's distribution over the ab bins (GET api/distribution/TOKEN), drawn here on the ab plane.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const page = $("colorize"), file = $("file"), drop = $("drop"), model = $("model");
  const slider = $("temperature"), shownTemperature = $("temperature-value"), split = $("split");
  const compare = $("compare"), before = $("before"), result = $("result"), marker = $("marker");
  const status = $("status"), note = $("note"), download = $("download");
  const canvas = $("distribution"), caption = $("dist-top");
  const uploadLimit = Number(page.dataset.uploadLimit);
  const GRID = 10, RANGE = 120; // ab bin spacing and the half-width of the plotted ab plane

  // photo: the chosen File; the rest is what api/predict answered for it.
  let photo = null, current = null, url = null, asked = 0;
  let rendering = false, renderAgain = false;

  function say(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  async function check(response) {
    if (response.ok) return response;
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(message);
  }

  async function predict() {
    if (!photo) return;
    if (photo.size > uploadLimit) {
      const mib = (n) => (n / 2 ** 20).toFixed(1);
      say(`${photo.name} is ${mib(photo.size)} MiB, above this server's limit of ${mib(uploadLimit)} MiB; choose a smaller file.`, true);
      return;
    }
    say(`Colourising ${photo.name} with ${model.value}…`);
    const question = ++asked; // a newer upload or model choice makes this answer stale
    const form = new FormData();
    form.append("image", photo);
    form.append("model", model.value);
    try {
      const answer = await (await check(await fetch("api/predict", { method: "POST", body: form }))).json();
      if (question !== asked) return;
      current = answer;
      const classification = current.head === "classification";
      slider.disabled = !classification;
      if (classification) setTemperature(current.temperature);
      note.hidden = classification;
      canvas.parentElement.classList.toggle("disabled", !classification);
      note.textContent = classification ? "" :
        `${current.name} predicts colours directly (regression): it has no temperature and no distribution to show.`;
      clearDistribution();
      await render();
    } catch (error) {
      say(error.message, true);
    }
  }

  // One render at a time; slider moves during a render are folded into one more render at the end.
  async function render() {
    if (rendering) { renderAgain = true; return; }
    rendering = true;
    try {
      do {
        renderAgain = false;
        const temperature = slider.disabled ? "" : slider.value;
        const query = temperature ? `?temperature=${temperature}` : "";
        const blob = await (await check(await fetch(`api/render/${current.token}${query}`))).blob();
        await show(blob, temperature);
      } while (renderAgain);
      say(`${current.width}×${current.height} px, ${current.name}` + (slider.disabled ? "" : `, temperature ${slider.value}`));
    } catch (error) {
      say(error.message, true);
    } finally {
      rendering = false;
    }
  }

  async function show(blob, temperature) {
    const previous = url;
    url = URL.createObjectURL(blob);
    result.src = before.src = download.href = url;
    await result.decode();
    if (previous) URL.revokeObjectURL(previous);
    result.dataset.temperature = temperature;
    download.download = `${photo.name.replace(/\.[^.]*$/, "")}-colourised.png`;
    compare.hidden = download.hidden = false;
  }

  function setTemperature(value) {
    slider.value = value;
    shownTemperature.textContent = Number(slider.value).toFixed(2);
  }

  function choose(chosen) {
    if (!chosen) return;
    photo = chosen;
    predict();
  }

  // The pixel under a click, in the photo's own coordinates.
  function pixelAt(event) {
    const box = result.getBoundingClientRect();
    const clamp = (v, n) => Math.min(n - 1, Math.max(0, Math.floor(v)));
    return [clamp((event.clientX - box.left) / box.width * current.width, current.width),
            clamp((event.clientY - box.top) / box.height * current.height, current.height)];
  }

  async function inspect(event) {
    if (!current || slider.disabled) return;
    const [x, y] = pixelAt(event);
    marker.style.left = `${(x + 0.5) / current.width * 100}%`;
    marker.style.top = `${(y + 0.5) / current.height * 100}%`;
    marker.hidden = false;
    try {
      const shown = await (await check(await fetch(`api/distribution/${current.token}?x=${x}&y=${y}`))).json();
      drawDistribution(shown);
      const [a, b] = shown.top;
      caption.textContent = `pixel (${x}, ${y}): most likely ab = (${a}, ${b}), p = ${shown.top_p.toFixed(3)}`;
    } catch (error) {
      say(error.message, true);
    }
  }

  function clearDistribution() {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    marker.hidden = true;
    caption.textContent = "Click a pixel of the result to see the colours the model considered there.";
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

  file.addEventListener("change", () => choose(file.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  model.addEventListener("change", predict);
  slider.addEventListener("input", () => {
    setTemperature(slider.value);
    if (current) render();
  });
  split.addEventListener("input", () => compare.style.setProperty("--split", `${split.value}%`));
  compare.addEventListener("click", inspect);
})();
