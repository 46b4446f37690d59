// live.js - Server-Sent Events streams kept open: each reconnects by itself
// after a failure (this code reopens it, with the id of the last event seen,
// after a growing pause) and reports its state: "connecting", "live",
// "reconnecting", "refused" (the gateway refused the token) or "closed".
//
// TokenStream reads a record's stream with EventSource, which sends no
// headers: each connection carries a token minted for the stream's scopes
// (?access_token=) and the last event id (?lastEventId=). The token is
// renewed, and the stream reopened, at four fifths of its life; EventSource's
// own retries are not used, as they would reuse an expired token.
//
// A minting the gateway refuses (401 or 403: the API token is wrong) is
// "refused", and the stream stops; any other failure is retried.

import { mint, TOKEN_TTL } from "./api.js";

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10000;

class Stream {
  // path: relative URL; types: the event names wanted; onEvent(type, data,
  // id) with data parsed from JSON; onState(state, detail).
  constructor(path, types, onEvent, onState) {
    this.path = path;
    this.types = new Set(types);
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.lastId = null;
    this.closed = false;
    this.retryMs = RETRY_MIN_MS;
    this.timer = null;
    this.generation = 0;
  }

  start() {
    this.onState("connecting");
    this.connect();
    return this;
  }

  close() {
    this.closed = true;
    this.generation++;
    clearTimeout(this.timer);
    this.disconnect();
    this.onState("closed");
  }

  emit(type, raw, id) {
    if (id) this.lastId = id;
    if (!this.types.has(type)) return;
    let data;
    try {
      data = JSON.parse(raw);
    } catch (e) {
      data = raw;
    }
    this.onEvent(type, data, id);
  }

  opened() {
    this.retryMs = RETRY_MIN_MS;
    this.onState("live");
  }

  failed(detail) {
    this.disconnect();
    if (this.closed) return;
    this.onState("reconnecting", detail);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  url(extra) {
    const u = new URL(this.path, document.baseURI);
    for (const [k, v] of Object.entries(extra)) if (v) u.searchParams.set(k, v);
    return u;
  }
}

export class TokenStream extends Stream {
  constructor(path, scopes, types, onEvent, onState) {
    super(path, types, onEvent, onState);
    this.scopes = scopes;
    this.es = null;
  }

  disconnect() {
    if (this.es) this.es.close();
    this.es = null;
  }

  async connect() {
    clearTimeout(this.timer);
    if (this.closed) return;
    const generation = ++this.generation;
    let minted;
    try {
      minted = await mint(this.scopes);
    } catch (e) {
      if (generation !== this.generation) return;
      if (e.status === 401 || e.status === 403) {
        this.disconnect();
        this.onState("refused", e.message);
      } else {
        this.failed(e.message);
      }
      return;
    }
    if (this.closed || generation !== this.generation) return;
    // A renewal replaces a live stream: close it, then resume from its last
    // event on the new one, so that nothing is missed or seen twice.
    this.disconnect();
    const es = new EventSource(this.url({ access_token: minted.token, lastEventId: this.lastId }));
    this.es = es;
    for (const type of this.types) {
      es.addEventListener(type, (ev) => {
        if (es === this.es) this.emit(type, ev.data, ev.lastEventId);
      });
    }
    es.onopen = () => {
      if (es === this.es) this.opened();
    };
    es.onerror = () => {
      if (es === this.es) this.failed();
    };
    const life = Date.parse(minted.expiresAt) - Date.now();
    const renewIn = Number.isFinite(life) ? life * 0.8 : TOKEN_TTL * 800;
    this.timer = setTimeout(() => this.connect(), Math.max(1000, renewIn));
  }
}
