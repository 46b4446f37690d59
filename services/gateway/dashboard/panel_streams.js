// panel_streams.js - the progress records streamed to clients right now
// (the streams events name them) and, through a stream of its own on each,
// their live state: percent done, current action, version.
//
// The page's own streams are among those the gateway counts, so an id would
// never leave the list while the page follows it. Every PROBE_MS the page
// therefore lets go of the ids it follows for a moment: a streams event
// without an id means no one else streams it (its row goes); no event, or
// one that still names it, means someone does, and the page follows it
// again from the last version it saw.

import { el, KeyedTable, ticking, when } from "./view.js";
import { TokenStream } from "./live.js";

const PROBE_MS = 30000;
const PROBE_WAIT_MS = 2000;

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
    this.followed = new Map(); // id -> TokenStream, or null while probing
    this.lastIds = new Map(); // id -> the last event id seen
    this.probing = null; // the ids let go, until the probe ends
    this.probeTimer = setInterval(() => this.probe(), PROBE_MS);
    this.probeEnd = null;
  }

  // set: a streams event's ids.
  set(ids) {
    const want = new Set(ids);
    if (this.probing) {
      clearTimeout(this.probeEnd);
      this.endProbe(want);
    }
    for (const id of [...this.followed.keys()]) if (!want.has(id)) this.drop(id);
    for (const id of want) if (!this.followed.has(id)) this.follow(id);
  }

  follow(id) {
    if (!this.table.rows.has(id)) this.table.set(id, [id, "…", "", "", ""]);
    const s = new TokenStream("api/progress/" + encodeURIComponent(id) + "/stream",
      ["progress:" + id], ["progress", "deleted"], (type, data) => this.record(id, type, data));
    s.lastId = this.lastIds.get(id) || null;
    this.followed.set(id, s.start());
  }

  drop(id) {
    const s = this.followed.get(id);
    if (s) s.close();
    this.followed.delete(id);
    this.lastIds.delete(id);
    this.table.remove(id);
  }

  probe() {
    if (this.probing || this.followed.size === 0) return;
    this.probing = new Set(this.followed.keys());
    for (const id of this.probing) {
      const s = this.followed.get(id);
      this.lastIds.set(id, s.lastId);
      s.close();
      this.followed.set(id, null);
    }
    this.probeEnd = setTimeout(() => this.endProbe(null), PROBE_WAIT_MS);
  }

  // endProbe: want, the ids of a streams event that came meanwhile, or null
  // when none came (nothing changed: every id is still streamed).
  endProbe(want) {
    const ids = this.probing;
    this.probing = null;
    for (const id of ids) {
      if (this.followed.get(id) !== null) continue;
      if (want && !want.has(id)) this.drop(id);
      else this.follow(id);
    }
  }

  stop() {
    clearInterval(this.probeTimer);
    clearTimeout(this.probeEnd);
    this.probing = null;
    for (const id of [...this.followed.keys()]) this.drop(id);
  }

  record(id, type, rec) {
    const s = this.followed.get(id);
    if (!s) return;
    this.lastIds.set(id, s.lastId);
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
