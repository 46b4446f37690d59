// view.js - building the page: elements made from text only (never HTML
// strings, so nothing a record holds can run), keyed table rows updated in
// place, and times shown as "in 42 s" / "3 min ago".

export const $ = (id) => document.getElementById(id);

// el("td", {class: "x", "data-label": "holder"}, "text", child...)
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// A table body whose rows are keyed: set() replaces a row's cells, remove()
// drops it; count and empty elements follow.
export class KeyedTable {
  constructor(prefix, labels) {
    this.body = $(prefix + "-rows");
    this.count = $(prefix + "-count");
    this.empty = $(prefix + "-empty");
    this.labels = labels;
    this.rows = new Map();
  }

  // cells: one entry per column, each a string, a Node or null. A row whose
  // text changed (not counting the ticking cells) is marked a moment.
  set(key, cells) {
    let tr = this.rows.get(key);
    const before = tr ? tr.signature : null;
    const signature = cells.map((c) =>
      c instanceof Node ? (c.tickFn ? "" : c.textContent) : String(c ?? "")).join("\u0000");
    if (!tr) {
      tr = el("tr", { "data-key": key });
      this.rows.set(key, tr);
      this.insertSorted(key, tr);
    }
    tr.replaceChildren(...cells.map((c, i) => el("td", { "data-label": this.labels[i] }, c)));
    tr.signature = signature;
    if (signature !== before) {
      tr.classList.remove("flash");
      void tr.offsetWidth; // restart the highlight
      tr.classList.add("flash");
      clearTimeout(tr.flashTimer);
      tr.flashTimer = setTimeout(() => tr.classList.remove("flash"), 800);
    }
    this.counted();
    return tr;
  }

  insertSorted(key, tr) {
    for (const [k, other] of this.rows) {
      if (k > key && other.parentNode === this.body) {
        this.body.insertBefore(tr, other);
        return;
      }
    }
    this.body.append(tr);
  }

  remove(key) {
    const tr = this.rows.get(key);
    if (tr) tr.remove();
    this.rows.delete(key);
    this.counted();
  }

  keys() {
    return [...this.rows.keys()];
  }

  clear() {
    for (const k of this.keys()) this.remove(k);
  }

  counted() {
    this.count.textContent = String(this.rows.size);
    this.empty.hidden = this.rows.size > 0;
  }
}

// timeLeft(ms) -> "1 h 02 min", "4 min 05 s", "12 s", "expired".
export function timeLeft(ms) {
  if (!Number.isFinite(ms)) return "–";
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + String(s % 60).padStart(2, "0") + " s";
  return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
}

// when(iso) -> "in 4 min 05 s" or "12 s ago" (relative to now).
export function when(iso) {
  const t = toMillis(iso);
  if (!Number.isFinite(t)) return "–";
  const d = t - Date.now();
  if (Math.abs(d) < 1000) return "now";
  return d > 0 ? "in " + timeLeft(d) : timeLeft(-d) + " ago";
}

// toMillis accepts an ISO 8601 string or a number of milliseconds (or
// seconds, for numbers too small to be milliseconds of this century).
export function toMillis(v) {
  if (typeof v === "number") return v < 1e11 ? v * 1000 : v;
  if (typeof v === "string" && v) return Date.parse(v);
  return NaN;
}

// A cell whose text is recomputed every second (see tickAll).
export function ticking(fn) {
  const span = el("span", { class: "tick" }, fn());
  span.tickFn = fn;
  return span;
}

export function tickAll() {
  for (const s of document.querySelectorAll("span.tick")) {
    const text = s.tickFn ? s.tickFn() : s.textContent;
    if (s.textContent !== text) s.textContent = text;
    s.classList.toggle("late", text === "expired");
  }
}

export function statusBadge(s) {
  return el("span", { class: "status", "data-s": s || "unknown" }, s || "unknown");
}
