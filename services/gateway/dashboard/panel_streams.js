// panel_streams.js - the progress records streamed to clients right now
// (the streams events name them) and, through a stream of its own on each,
// their live state: percent done, current action, version.

import { el, KeyedTable, ticking, when } from "./view.js";
import { LiveStream } from "./live.js";

// percent of a record: its own percent field, else the share of its
// completed steps (of totalSteps when given), else 100 once complete.
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
    this.streams = new Map(); // id -> LiveStream
  }

  // ids: the progress ids streamed now; own: how many of each id's streams
  // are this page's own (one for each id it follows).
  set(ids) {
    const want = new Set(ids);
    for (const [id, s] of this.streams) {
      if (!want.has(id)) {
        s.close();
        this.streams.delete(id);
        this.table.remove(id);
      }
    }
    for (const id of want) {
      if (this.streams.has(id)) continue;
      this.table.set(id, [id, "…", "", "", ""]);
      const s = new LiveStream("api/progress/" + encodeURIComponent(id) + "/stream",
        ["progress:" + id], ["progress", "deleted"], (type, data) => this.record(id, type, data));
      this.streams.set(id, s.start());
    }
  }

  record(id, type, rec) {
    if (!this.streams.has(id)) return;
    if (type === "deleted") {
      this.table.set(id, [id, "deleted", "", "", ""]);
      return;
    }
    const p = percentOf(rec);
    const done = p === null ? el("span", { class: "muted" }, "–")
      : el("span", { class: "pct" }, el("progress", { max: "100", value: p.toFixed(1) }), " " + Math.round(p) + "%");
    const at = rec.timestamp;
    this.table.set(id, [id, done, rec.currentAction || "", String(rec.version ?? ""),
      at ? ticking(() => when(at)) : ""]);
  }
}
