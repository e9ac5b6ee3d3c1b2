// The "real or fake?" study page. The server holds the plan and the clock: this script only fetches the
// current pair, shows it for the stored exposure (0: until the answer), and sends the chosen side.
// Nothing here is read from the page's URL, so a query string cannot change the study. A participant whose
// cookie is lost mid-study (cleared, blocked, expired) is resumed once with the id this page was given;
// failing that, the page offers Start again instead of repeating the error.
"use strict";
(() => {
  const root = document.getElementById("study");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const intro = $("study-intro"), trialBox = $("study-trial"), done = $("study-done");
  const pair = root.querySelector(".study-pair");
  const images = { left: $("study-left"), right: $("study-right") };
  const choices = [$("study-pick-left"), $("study-pick-right")];
  const progress = $("study-progress"), feedback = $("study-feedback"), onward = $("study-continue");
  const startButton = $("study-start"), lost = $("study-lost");
  let current = null; // the pair that may be answered now; null while waiting
  let hideTimer = null;
  let participant = null; // this page's participant, as the server named them on start

  async function call(url, options = {}) {
    const response = await fetch(url, { credentials: "same-origin", ...options });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw Object.assign(new Error(body.error || `${response.status} ${response.statusText}`), { status: response.status });
    return body;
  }

  function load(img, src) {
    return new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("a photo failed to load"));
      img.src = src;
    });
  }

  function say(text, kind = "") {
    feedback.textContent = text;
    feedback.className = kind;
  }

  function enable(on) {
    choices.forEach((button) => { button.disabled = !on; });
  }

  // Both photos appear at once, only after both have loaded, and the exposure runs from then.
  async function show() {
    onward.hidden = true;
    pair.classList.add("hidden-pair");
    const trial = await call(root.dataset.next);
    if (trial.done) {
      trialBox.hidden = true;
      done.hidden = false;
      return;
    }
    const practice = trial.phase === "practice";
    progress.textContent = practice ? `Practice pair ${trial.position + 1} of ${trial.practice}`
                                    : `Pair ${trial.position - trial.practice + 1} of ${trial.pairs}`;
    say(!practice && trial.position === trial.practice && trial.practice > 0 ? "Practice is over: from now on there is no feedback." : "");
    await Promise.all([load(images.left, trial.left), load(images.right, trial.right)]);
    pair.classList.remove("hidden-pair");
    current = trial;
    enable(true);
    if (trial.exposure > 0) hideTimer = setTimeout(() => pair.classList.add("hidden-pair"), trial.exposure * 1000);
  }

  async function choose(side) {
    if (!current) return;
    const trial = current;
    current = null;
    enable(false);
    clearTimeout(hideTimer);
    const result = await call(root.dataset.answer, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ trial: trial.trial, side }),
    });
    if (result.phase !== "practice") return show();
    pair.classList.remove("hidden-pair");
    say(result.correct ? `Right: the ${result.real_side} photo is the real one.` : `Not this time: the ${result.real_side} photo is the real one.`,
        result.correct ? "right" : "wrong");
    onward.hidden = false;
    onward.focus();
  }

  function fail(error) {
    say(`Something went wrong: ${error.message}`, "wrong");
    onward.hidden = false;
  }

  async function start(body) {
    const started = await call(root.dataset.start, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    participant = started.participant;
  }

  // The server no longer knows who this is (401): resume this page's participant, else offer Start again.
  async function recover() {
    try {
      if (!participant) throw Object.assign(new Error("no participant"), { status: 401 });
      await start({ participant });
      await show();
    } catch (error) {
      if (error.status !== 401) return fail(error);
      participant = null;
      current = null;
      enable(false);
      trialBox.hidden = true;
      intro.hidden = false;
      lost.hidden = false;
      startButton.textContent = "Start again";
      startButton.focus();
    }
  }

  // Any failure is shown, and "Next pair" asks the server again where this participant stands.
  function guarded(action) {
    return (...args) => action(...args).catch((error) => (error.status === 401 ? recover() : fail(error)));
  }

  startButton.addEventListener("click", guarded(async () => {
    await start({});
    intro.hidden = true;
    lost.hidden = true;
    trialBox.hidden = false;
    await show();
  }));
  choices.forEach((button) => button.addEventListener("click", guarded(() => choose(button.dataset.side))));
  onward.addEventListener("click", guarded(show));
  document.addEventListener("keydown", (event) => {
    const side = { ArrowLeft: "left", ArrowRight: "right" }[event.key];
    if (side && current) {
      event.preventDefault();
      guarded(choose)(side);
    }
  });
})();
