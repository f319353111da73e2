() => {
  // Parley's page behaviour that Gradio's components lack: a gapless player for live speech (the Live tab's and a
  // room listener's), announcements for screen readers, focus that follows the Record/Stop button, dropdowns that
  // close on Tab and open at the chosen language, and captions brought into view when recording starts on a small
  // screen.
  const parley = (window.parley = window.parley || {});
  const byId = (id) => document.getElementById(id);
  const micButton = (name) =>
    [...document.querySelectorAll("#mic button")].find(
      (b) => (b.getAttribute("aria-label") || b.textContent).trim().startsWith(name) && b.offsetParent !== null,
    );

  // ---- the live player: pieces queued in order and played back to back (Web Audio schedules them gaplessly) ----
  // ``log`` holds each piece's place on the player's timeline (AudioContext seconds): tests read it.
  const player = (parley.player = { ctx: null, next: 0, log: [], sources: [], chain: Promise.resolve() });
  const context = () => {
    if (!player.ctx) player.ctx = new AudioContext();
    if (player.ctx.state === "suspended") player.ctx.resume();
    return player.ctx;
  };
  parley.play = (value) => {
    const url = value && (value.url || (value.value && value.value.url));
    if (!url) return [];
    player.chain = player.chain.then(async () => {
      const ctx = context();
      const audio = await ctx.decodeAudioData(await (await fetch(url)).arrayBuffer());
      const source = ctx.createBufferSource();
      source.buffer = audio;
      source.connect(ctx.destination);
      const start = Math.max(ctx.currentTime + 0.05, player.next);
      source.start(start);
      player.next = start + audio.duration;
      player.sources.push(source);
      player.log.push({ url, start, duration: audio.duration });
    }).catch((e) => console.warn("Parley player:", e));
    return [];
  };
  parley.resetPlayer = () => {
    player.sources.forEach((s) => { try { s.stop(); } catch (e) { /* already ended */ } });
    player.sources = [];
    player.log = [];
    player.next = 0;
    return [];
  };
  parley.stopRecording = () => {
    const stop = micButton("Stop");
    if (stop) stop.click();
    return [];
  };

  // ---- recording starts (or a room's listener joins, afresh): unlock audio (a user gesture), bring the captions
  // into view on a small screen ----
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#listener-join")) { parley.resetPlayer(); context(); return; }
    const button = e.target.closest && e.target.closest("#mic button");
    if (!button || !(button.getAttribute("aria-label") || button.textContent).trim().startsWith("Record")) return;
    context();
    setTimeout(() => {
      const captions = byId("captions");
      if (captions && captions.getBoundingClientRect().bottom > window.innerHeight) {
        byId("mic").scrollIntoView({ block: "start" });
      }
    }, 300);
  }, true);

  // ---- focus: when the focused Record button turns into Stop (or back), the new button takes the focus ----
  let focusedMic = false;
  document.addEventListener("focusin", (e) => {
    focusedMic = Boolean(e.target.closest && e.target.closest("#mic") && e.target.tagName === "BUTTON");
  });
  const keepFocus = () => {
    if (!focusedMic || (document.activeElement && document.activeElement !== document.body)) return;
    const next = micButton("Stop") || micButton("Record");
    if (next) next.focus();
  };

  // ---- dropdowns: Tab leaves with the list closed; the list opens at the chosen option ----
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Tab" || !e.target.closest || !e.target.closest("#src-lang, #tgt-lang, #preset")) return;
    const input = e.target; // after Gradio's own Tab handling, which leaves the list open
    setTimeout(() => input.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true })), 0);
  }, true);
  const openAtChoice = () => {
    for (const list of document.querySelectorAll("[role=listbox]")) {
      if (list.dataset.parleyScrolled) continue;
      list.dataset.parleyScrolled = "1";
      setTimeout(() => { // once Gradio has laid the list out (it scrolls it itself, to the wrong place)
        const chosen = list.querySelector("[aria-selected=true]");
        if (!chosen) return;
        const offset = chosen.getBoundingClientRect().top - list.getBoundingClientRect().top;
        list.scrollTop += offset - (list.clientHeight - chosen.offsetHeight) / 2;
      }, 50);
    }
  };

  // ---- announcements: captions and status are live regions (their containers persist across updates) ----
  const announce = () => {
    for (const id of ["captions", "live-status", "model-status", "settings-note", "listener-captions", "listener-status"]) {
      const el = byId(id);
      if (el && !el.hasAttribute("aria-live")) {
        el.setAttribute("aria-live", "polite");
        el.setAttribute("role", "status");
      }
    }
  };

  // ---- Gradio's "Empty value" placeholders name a plain div, which ARIA forbids (axe-core: aria-prohibited-attr):
  // they are the picture of an empty output, so they get that role ----
  const nameEmpties = () => {
    for (const el of document.querySelectorAll(".empty[aria-label]:not([role])")) el.setAttribute("role", "img");
  };

  new MutationObserver(() => { announce(); keepFocus(); openAtChoice(); nameEmpties(); }).observe(document.body, {
    childList: true,
    subtree: true,
  });
  announce();
  nameEmpties();
}
