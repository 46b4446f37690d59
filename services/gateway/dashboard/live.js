// live.js - one Server-Sent Events stream kept open with short-lived tokens.
// Each connection carries a token minted for the stream's scopes
// (?access_token=, as EventSource sends no headers) and the id of the last
// event seen (?lastEventId=), so a reconnection resumes where it stopped.
// The token is renewed, and the stream reopened, before it expires; after
// a failure the stream is reopened by this code, never by EventSource
// itself, whose retries would reuse an expired token and a stale id.

import { mint, TOKEN_TTL } from "./api.js";

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10000;

export class LiveStream {
  // path: "api/events"; scopes: what its token covers; types: the event
  // names to listen to; onEvent(type, data, id); onState(state, detail)
  // with state "connecting", "live", "reconnecting" or "closed".
  constructor(path, scopes, types, onEvent, onState) {
    this.path = path;
    this.scopes = scopes;
    this.types = types;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.lastId = null;
    this.es = null;
    this.closed = false;
    this.retryMs = RETRY_MIN_MS;
    this.timer = null;
    this.generation = 0;
  }

  start() {
    this.connect();
    return this;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    this.es = null;
    this.onState("closed");
  }

  async connect() {
    clearTimeout(this.timer);
    if (this.closed) return;
    const generation = ++this.generation;
    if (!this.es) this.onState("connecting"); // a renewal keeps the stream live meanwhile
    let minted;
    try {
      minted = await mint(this.scopes);
    } catch (e) {
      this.onState("reconnecting", e.message);
      this.retryLater();
      return;
    }
    if (this.closed || generation !== this.generation) return;
    const url = new URL(this.path, document.baseURI);
    url.searchParams.set("access_token", minted.token);
    if (this.lastId) url.searchParams.set("lastEventId", this.lastId);
    if (this.es) this.es.close();
    const es = new EventSource(url);
    this.es = es;
    for (const type of this.types) {
      es.addEventListener(type, (ev) => {
        if (es !== this.es) return;
        if (ev.lastEventId) this.lastId = ev.lastEventId;
        let data = null;
        try {
          data = JSON.parse(ev.data);
        } catch (e) {
          data = ev.data;
        }
        this.onEvent(type, data, ev.lastEventId);
      });
    }
    es.onopen = () => {
      if (es !== this.es) return;
      this.retryMs = RETRY_MIN_MS;
      this.onState("live");
    };
    es.onerror = () => {
      if (es !== this.es) return;
      es.close();
      this.es = null;
      this.onState("reconnecting");
      this.retryLater();
    };
    // Renew at four fifths of the token's life, at least a second from now.
    const life = Date.parse(minted.expiresAt) - Date.now();
    const renewIn = Number.isFinite(life) ? life * 0.8 : TOKEN_TTL * 800;
    this.timer = setTimeout(() => this.connect(), Math.max(1000, renewIn));
  }

  retryLater() {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
