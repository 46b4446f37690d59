// panel_streams.js - the progress records streamed to clients right now
// (the streams events name them) and, through a stream of its own on each,
// their live state: percent done, current action, version.
//
// The page's own streams are among those the gateway counts: a streams
// event says how many streams each record has ("clients"), so a record the
// page follows stays while it has more than the page's own one, and goes
// when only the page's is left.

import { el, KeyedTable, ticking, when } from "./view.js";
import { TokenStream } from "./live.js";

// percent of a record: its own percent field, else the share of its
// completed steps of totalSteps, else 100 once complete.
export function percentOf(rec) {
  if (!rec) return null;
  for (const k of ["percent", "progress", "percentComplete"]) {
    if (typeof rec[k] === "number") return Math.max(0, Math.min(100, rec[k]));
  }
  if (rec.complete === true) return 100;
  const done = Array.isArray(rec.completedSteps) ? rec.completedSteps.length : null;
  const total = typeof rec.totalSteps === "number" ? rec.totalSteps : null;
  if (done !== null && total) return Math.min(100, (100 * done) / total);
  return null;
}

export class StreamsPanel {
  constructor() {
    this.table = new KeyedTable("streams", ["progress id", "done", "action", "version", "updated"]);
    this.followed = new Map(); // id -> TokenStream
  }

  // set: a streams event's clients, record id -> streams open on it.
  set(clients) {
    const dropped = new Set();
    for (const [id, s] of [...this.followed]) {
      const mine = s.live ? 1 : 0;
      if ((clients[id] || 0) <= mine) {
        this.drop(id);
        dropped.add(id);
      }
    }
    for (const [id, n] of Object.entries(clients)) {
      if (n > 0 && !this.followed.has(id) && !dropped.has(id)) this.follow(id);
    }
  }

  follow(id) {
    if (!this.table.rows.has(id)) this.table.set(id, [id, "…", "", "", ""]);
    const s = new TokenStream("api/progress/" + encodeURIComponent(id) + "/stream",
      ["progress:" + id], ["progress", "deleted"], (type, data) => this.record(id, type, data),
      (state) => { s.live = state === "live"; });
    s.live = false;
    this.followed.set(id, s.start());
  }

  drop(id) {
    const s = this.followed.get(id);
    if (s) s.close();
    this.followed.delete(id);
    this.table.remove(id);
  }

  stop() {
    for (const id of [...this.followed.keys()]) this.drop(id);
  }

  record(id, type, rec) {
    if (!this.followed.has(id)) return;
    if (type === "deleted") {
      this.table.set(id, [id, "deleted", "", "", ""]);
      return;
    }
    const p = percentOf(rec);
    const done = p === null ? el("span", { class: "muted" }, "–")
      : el("span", { class: "pct", "data-percent": Math.round(p) },
        el("progress", { max: "100", value: p.toFixed(1) }), " " + Math.round(p) + "%");
    const at = rec.timestamp;
    this.table.set(id, [id, done, rec.currentAction || "", String(rec.version ?? ""),
      at ? ticking(() => when(at)) : ""]);
  }
}
