// panel_health.js - every service and replica, up or down, and the
// gateway's request rate and latency. GET /readyz gives the first picture;
// then the health events (a replica up or down) and the metrics events
// (once a second) keep it.

import { $, el } from "./view.js";

export class HealthPanel {
  constructor() {
    this.list = $("services");
    this.services = new Map(); // name -> {up, replicas: Map(url -> {up, status}), detail}
  }

  // readyz: {checks: {progress: "ok", ...}, status}.
  ready(doc) {
    for (const [name, check] of Object.entries((doc && doc.checks) || {})) {
      const s = this.service(name);
      if (s.replicas.size) continue; // the health events know better
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

  // health: {services: [every replica of every service], ready}.
  health(d) {
    if (!d || !Array.isArray(d.services)) return;
    d.services.forEach((s) => this.one(s));
    this.draw();
  }

  // one: {service, url, status, up} (a replica: status "up", "redis_down",
  // "down" or "unknown"), or {service, up} for a whole service.
  one(d) {
    const name = d.service || d.name;
    if (!name) return;
    const s = this.service(name);
    const up = d.up !== undefined ? d.up === true : d.status === "up" || d.status === "ok";
    if (d.url) {
      s.replicas.set(d.url, { up, status: d.status || (up ? "up" : "down") });
      const reps = [...s.replicas.values()];
      s.up = reps.some((r) => r.up);
      s.detail = reps.filter((r) => !r.up).map((r) => r.status).join(", ");
    } else {
      s.up = up;
      s.detail = up ? "" : d.status || "";
    }
  }

  draw() {
    const items = [];
    for (const [name, s] of [...this.services].sort()) {
      const reps = [...s.replicas.values()];
      const upCount = reps.filter((r) => r.up).length;
      items.push(el("li", { "data-service": name, "data-up": s.up === null ? "unknown" : String(s.up),
        "data-replicas-up": upCount, title: [...s.replicas].map(([u, r]) => u + " " + r.status).join("\n") || s.detail },
        name + (s.up === false ? " down" : s.up ? " up" : ""),
        reps.length ? el("small", {}, upCount + "/" + reps.length + " replicas") : null,
        s.detail && !s.up ? el("small", {}, s.detail) : null));
    }
    this.list.replaceChildren(...items);
  }

  // metrics: {requestsPerSecond, latencyMs: {p50, p99, ...} (null when
  // idle), sseClients}.
  metrics(d) {
    if (!d) return;
    const lat = d.latencyMs || {};
    $("m-rate").textContent = typeof d.requestsPerSecond === "number"
      ? d.requestsPerSecond.toFixed(d.requestsPerSecond < 10 ? 1 : 0) : "–";
    $("m-p50").textContent = typeof lat.p50 === "number" ? ms(lat.p50) : "–";
    $("m-p99").textContent = typeof lat.p99 === "number" ? ms(lat.p99) : "–";
    $("m-streams").textContent = typeof d.sseClients === "number" ? String(d.sseClients) : "–";
  }
}

function ms(v) {
  return v < 10 ? v.toFixed(2) + " ms" : Math.round(v) + " ms";
}
