// panel_queue.js - the claims and reservations of the queue: read once from
// GET /api/queue, then kept by the claim.* and reservation.* events (a held
// one is shown or replaced, a released or expired one removed). Time left
// ticks down here, from expiresAt, between events.

import { api } from "./api.js";
import { el, KeyedTable, ticking, timeLeft, toMillis, statusBadge } from "./view.js";

const GONE = /\.(released|expired|deleted)$/;

export class QueuePanel {
  constructor(onError) {
    this.claims = new KeyedTable("claims", ["item", "holder", "token", "status", "time left"]);
    this.reservations = new KeyedTable("reservations", ["item", "holder", "rows", "status", "time left"]);
    this.onError = onError;
    this.refetchTimer = null;
  }

  async load() {
    try {
      const q = await api("GET", "api/queue");
      this.replace(this.claims, q.sqClaims || {}, (c) => this.claimCells(c));
      this.replace(this.reservations, q.refundReservations || {}, (r) => this.reservationCells(r));
    } catch (e) {
      this.onError("queue: " + e.message);
    }
  }

  replace(table, byId, cells) {
    const seen = new Set();
    for (const [id, item] of Object.entries(byId)) {
      const key = item.sq || id;
      seen.add(key);
      table.set(key, cells(Object.assign({ sq: key }, item)));
    }
    for (const k of table.keys()) if (!seen.has(k)) table.remove(k);
  }

  claimCells(c) {
    const expires = toMillis(c.expiresAt);
    return [c.sq, c.botId || "–", c.token != null ? String(c.token) : "–", statusBadge(c.status),
      ticking(() => timeLeft(expires - Date.now()))];
  }

  reservationCells(r) {
    const expires = toMillis(r.expiresAt);
    const rows = r.rowCount != null ? (r.startRow != null ? r.startRow + "+" : "") + r.rowCount : "–";
    return [r.sq, r.botId || "–", rows, statusBadge(r.status),
      ticking(() => timeLeft(expires - Date.now()))];
  }

  // An event of the claim or reservation family.
  event(type, data) {
    const claim = type.startsWith("claim.");
    const table = claim ? this.claims : this.reservations;
    const item = (data && (data.claim || data.reservation || data.data)) || data || {};
    const key = item.sq;
    if (key) {
      if (GONE.test(type)) table.remove(key);
      else table.set(key, claim ? this.claimCells(item) : this.reservationCells(item));
    }
    // Events are best effort between services: read the whole state again
    // soon after a burst, so a lost one heals.
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => this.load(), 1500);
  }
}
