// panel_health.js - every service and replica, up or down, and the
// gateway's request rate and latency. GET /readyz gives the first picture;
// then the health events (a replica up or down) and the metrics events
// (once a second) keep it.

import { $, el } from "./view.js";

export class HealthPanel {
  constructor() {
    this.list = $("services");
    this.services = new Map(); // name -> {up, replicas: Map(name -> up), detail}
  }

  // readyz: {checks: {progress: "ok", ...}, status}.
  ready(doc) {
    for (const [name, check] of Object.entries((doc && doc.checks) || {})) {
      const s = this.service(name);
      s.up = check === "ok";
      s.detail = s.up ? "" : String(check);
    }
    this.draw();
  }

  service(name) {
    let s = this.services.get(name);
    if (!s) {
      s = { up: null, replicas: new Map(), detail: "" };
      this.services.set(name, s);
    }
    return s;
  }

  // health: one service or replica, or all of them.
  health(d) {
    if (!d) return;
    if (Array.isArray(d.services)) d.services.forEach((s) => this.one(s));
    else if (d.services && typeof d.services === "object")
      Object.entries(d.services).forEach(([name, s]) => this.one(Object.assign({ service: name }, s)));
    else this.one(d);
    this.draw();
  }

  one(d) {
    const name = d.service || d.name;
    if (!name) return;
    const s = this.service(name);
    const up = (x) => x === true || x === "up" || x === "ok";
    if (Array.isArray(d.replicas)) {
      s.replicas = new Map(d.replicas.map((r, i) =>
        [r.replica || r.url || r.address || r.name || String(i + 1), up(r.up !== undefined ? r.up : r.status)]));
    } else if (d.replica || d.url || d.address) {
      s.replicas.set(d.replica || d.url || d.address, up(d.up !== undefined ? d.up : d.status));
    }
    if (d.up !== undefined || d.status !== undefined) {
      if (!(d.replica || d.url || d.address)) s.up = up(d.up !== undefined ? d.up : d.status);
    }
    if (s.replicas.size) s.up = [...s.replicas.values()].some(Boolean);
    s.detail = d.error || d.message || "";
  }

  draw() {
    const items = [];
    for (const [name, s] of [...this.services].sort()) {
      const reps = [...s.replicas.values()];
      const upCount = reps.filter(Boolean).length;
      items.push(el("li", { "data-service": name, "data-up": s.up === null ? "unknown" : String(s.up),
        title: [...s.replicas].map(([r, u]) => r + (u ? " up" : " down")).join("\n") || s.detail },
        name + (s.up === false ? " down" : s.up ? " up" : ""),
        reps.length ? el("small", {}, upCount + "/" + reps.length + " replicas") : null,
        s.detail && !s.up ? el("small", {}, s.detail) : null));
    }
    this.list.replaceChildren(...items);
  }

  metrics(d) {
    if (!d) return;
    const num = (...keys) => {
      for (const k of keys) {
        const v = k.split(".").reduce((o, p) => (o == null ? undefined : o[p]), d);
        if (typeof v === "number") return v;
      }
      return undefined;
    };
    const rate = num("requestsPerSecond", "rate", "requests.rate", "http.rate");
    const p50 = num("latencyMs.p50", "latency.p50Ms", "latency.p50", "p50Ms", "p50");
    const p99 = num("latencyMs.p99", "latency.p99Ms", "latency.p99", "p99Ms", "p99");
    const streams = num("sseClients", "streams", "sse.clients");
    if (rate !== undefined) $("m-rate").textContent = rate.toFixed(rate < 10 ? 1 : 0);
    if (p50 !== undefined) $("m-p50").textContent = ms(p50);
    if (p99 !== undefined) $("m-p99").textContent = ms(p99);
    if (streams !== undefined) $("m-streams").textContent = String(streams);
  }
}

function ms(v) {
  return v < 10 ? v.toFixed(2) + " ms" : Math.round(v) + " ms";
}
