// panel_queue.js - the claims and reservations of the queue: read once from
// GET /api/queue, then kept by the claim.* and reservation.* events (a held
// one is shown or updated, a released or expired one removed). The events
// carry no fencing token, so a new claim is read again from GET /api/queue
// a moment later for its token. Time left ticks down here, from expiresAt,
// between events.

import { api } from "./api.js";
import { KeyedTable, ticking, timeLeft, toMillis, statusBadge } from "./view.js";

const GONE = /\.(released|expired|deleted)$/;

export class QueuePanel {
  constructor(onError) {
    this.claims = new KeyedTable("claims", ["item", "holder", "token", "status", "time left"]);
    this.reservations = new KeyedTable("reservations", ["item", "holder", "rows", "status", "time left"]);
    this.items = { claims: new Map(), reservations: new Map() };
    this.onError = onError;
    this.refetchTimer = null;
  }

  async load() {
    try {
      const q = await api("GET", "api/queue");
      this.replace("claims", q.sqClaims || {});
      this.replace("reservations", q.refundReservations || {});
    } catch (e) {
      this.onError("queue: " + e.message);
    }
  }

  // replace shows exactly the items of byId ({sq: item}) in one table,
  // keeping what events said that the listing lacks (a reservation's
  // expiresAt).
  replace(which, byId) {
    const items = this.items[which];
    const seen = new Set();
    for (const [id, item] of Object.entries(byId)) {
      const key = item.sq || id;
      seen.add(key);
      this.show(which, Object.assign({ sq: key }, item));
    }
    for (const k of [...items.keys()]) if (!seen.has(k)) this.drop(which, k);
  }

  // show merges fields into the item known (an event keeps the token a
  // listing gave) and redraws its row.
  show(which, fields) {
    const items = this.items[which];
    const item = Object.assign(items.get(fields.sq) || {}, fields);
    items.set(item.sq, item);
    if (which === "claims") this.claims.set(item.sq, this.claimCells(item));
    else this.reservations.set(item.sq, this.reservationCells(item));
  }

  drop(which, key) {
    this.items[which].delete(key);
    (which === "claims" ? this.claims : this.reservations).remove(key);
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
  // data: {sq, namespace, botId, status, timestamp, expiresAt} (claims),
  // {sq, log, botId, startRow, rowCount, ...} (reservations).
  event(type, data) {
    const which = type.startsWith("claim.") ? "claims" : "reservations";
    const fields = Object.assign({}, data);
    for (const k of ["id", "type", "createdAt"]) delete fields[k]; // the event's, not the item's
    if (!fields.sq) return;
    if (GONE.test(type)) {
      this.drop(which, fields.sq);
      return;
    }
    this.show(which, fields);
    // A new claim's token, and anything a lost event (they are best effort
    // between services) left stale, come with one read after a burst.
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => this.load(), 250);
  }
}
