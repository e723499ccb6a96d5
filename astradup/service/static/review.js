// The review page: the queue of pairs, side by side, decided with the keyboard.
// Every name from the server is set with textContent (never innerHTML), so a file named
// like markup shows as text.
"use strict";

const state = { items: [], current: 0, enabled: false };
const KEYS = { d: "duplicate", n: "not-duplicate", s: "skip" };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function fmt(x) {
  return x === null || x === undefined ? "n/a" : Number(x).toFixed(3);
}

function side(label, name, thumb, start, end) {
  const box = el("div", "side");
  const img = el("img");
  img.src = thumb;
  img.alt = label + " frame";
  box.appendChild(img);
  box.appendChild(el("div", "name", name));
  if (start !== null && start !== undefined) {
    box.appendChild(el("div", "times", `${fmt(start)} s - ${fmt(end)} s`));
  }
  return box;
}

function render() {
  const root = document.getElementById("queue");
  root.replaceChildren();
  state.items.forEach((p, i) => {
    const card = el("section", "pair");
    card.dataset.index = String(i);
    if (i === state.current) card.classList.add("current");
    if (p.decision) card.classList.add("decided");
    const seg = p.segments.length ? p.segments[0] : {};
    card.appendChild(side("a", p.a, p.thumb_a, seg.a_start, seg.a_end));
    card.appendChild(side("b", p.b, p.thumb_b, seg.b_start, seg.b_end));
    const offset = p.offset === null || p.offset === undefined ? "n/a" : `${p.offset.toFixed(2)} s`;
    card.appendChild(el("div", "scores",
      `score ${fmt(p.score)} (${p.label}) | visual ${fmt(p.visual)} | audio ${fmt(p.audio)} | ` +
      `metadata ${fmt(p.metadata)} | offset ${offset}`));
    if (p.decision) card.appendChild(el("div", "decision", `decided: ${p.decision}`));
    card.addEventListener("click", () => { state.current = i; render(); });
    root.appendChild(card);
  });
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

async function load() {
  const r = await fetch("/review/queue?limit=200");
  if (!r.ok) {
    setStatus(`queue unavailable (${r.status}): ${(await r.json()).detail}`);
    return;
  }
  const q = await r.json();
  state.items = q.pairs;
  state.enabled = q.review_enabled;
  state.current = 0;
  setStatus(q.total ? `${q.total} pairs to review` + (q.review_enabled ? "" :
    " (read-only: start the server with --allow-review to decide)") : "Nothing to review.");
  render();
}

async function decide(decision) {
  const p = state.items[state.current];
  if (!p) return;
  if (!state.enabled) {
    setStatus("Read-only: start the server with --allow-review to record decisions.");
    return;
  }
  const r = await fetch("/decide", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ a: p.a, b: p.b, decision }),
  });
  if (!r.ok) {
    setStatus(`not recorded (${r.status}): ${(await r.json()).detail}`);
    return;
  }
  p.decision = decision;
  setStatus(`recorded ${decision}: ${p.a} / ${p.b}`);
  if (state.current < state.items.length - 1) state.current += 1;
  render();
}

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (KEYS[ev.key]) { ev.preventDefault(); decide(KEYS[ev.key]); }
  else if (ev.key === "j") { state.current = Math.min(state.current + 1, state.items.length - 1); render(); }
  else if (ev.key === "k") { state.current = Math.max(state.current - 1, 0); render(); }
});

load();
