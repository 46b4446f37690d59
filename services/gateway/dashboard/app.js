// app.js - the dashboard's wiring: ask for the API token once, follow the
// one typed event stream of the gateway (GET /api/events, with a minted
// "events" token), read the current
// state (GET /readyz, /api/queue, /api/accounts) whenever it opens, and hand
// each event to its panel. Nothing is polled: the state moves on events.

import { api, apiToken, readiness } from "./api.js";
import { TokenStream } from "./live.js";
import { $, tickAll } from "./view.js";
import { HealthPanel } from "./panel_health.js";
import { QueuePanel } from "./panel_queue.js";
import { AccountsPanel } from "./panel_accounts.js";
import { StreamsPanel } from "./panel_streams.js";

// The event types of GET /api/events the panels show.
const EVENT_TYPES = [
  "health", "metrics", "streams",
  "claim.claimed", "claim.renewed", "claim.status", "claim.released", "claim.expired",
  "reservation.reserved", "reservation.renewed", "reservation.released", "reservation.expired",
  "account.created", "account.updated", "account.deleted", "account.status",
];
// The families asked for, so the stream carries nothing the page drops.
const EVENT_FILTER = "health,metrics,streams,claim.*,reservation.*,account.*";

let board = null;

function say(text) {
  $("status").textContent = text ? new Date().toLocaleTimeString() + " " + text : "";
}

function liveBadge(state, detail) {
  const b = $("live");
  b.dataset.state = state;
  b.textContent = state === "live" ? "live" : state;
  if (detail) say(detail);
}

class Board {
  constructor() {
    this.health = new HealthPanel();
    this.queue = new QueuePanel(say);
    this.accounts = new AccountsPanel(say);
    this.streams = new StreamsPanel();
    this.events = null;
    this.ticker = null;
  }

  async start() {
    this.ticker = setInterval(tickAll, 1000);
    // An "events" token sees all of the stream, as the API token would,
    // and only reads.
    this.events = new TokenStream("api/events?types=" + EVENT_FILTER, ["events"], EVENT_TYPES,
      (type, data) => this.event(type, data), (state, detail) => this.state(state, detail)).start();
    const ready = readiness().then((d) => this.health.ready(d)).catch((e) => say("readyz: " + e.message));
    await Promise.all([ready, this.reload()]);
  }

  // state: the events stream's. It does not resume, so whenever it opens,
  // what happened before (or while it was down) is read again: the reads
  // and the events then agree, as both carry whole items.
  state(state, detail) {
    liveBadge(state, detail);
    if (state === "live") this.reload();
    if (state === "refused") signOut("The gateway refused this token (" + detail + ").");
  }

  event(type, data) {
    if (type === "health") this.health.health(data);
    else if (type === "metrics") this.health.metrics(data);
    else if (type === "streams") this.streams.set((data && data.clients) || {});
    else if (type.startsWith("claim.") || type.startsWith("reservation.")) this.queue.event(type, data);
    else this.accounts.event(type, data);
  }

  reload() {
    return Promise.all([this.queue.load(), this.accounts.load()]);
  }

  stop() {
    clearInterval(this.ticker);
    if (this.events) this.events.close();
    this.streams.stop();
  }
}

function showSignin(message) {
  $("board").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("token").focus();
}

async function open() {
  // A token the gateway refuses is asked again; any other failure is shown.
  try {
    await api("GET", "api/queue");
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      apiToken.clear();
      showSignin("The gateway refused this token (" + e.message + ").");
      return;
    }
    say(e.message);
  }
  $("signin").hidden = true;
  $("board").hidden = false;
  $("signout").hidden = false;
  board = new Board();
  window.dashboard = board; // for a look from the browser's console
  await board.start();
  document.body.dataset.ready = "true";
}

$("signin").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (!t) return;
  apiToken.set(t);
  $("token").value = "";
  open();
});

function signOut(message) {
  if (board) board.stop();
  board = null;
  window.dashboard = null;
  apiToken.clear();
  delete document.body.dataset.ready;
  liveBadge("off");
  showSignin(message);
}

$("signout").addEventListener("click", () => signOut());

if (apiToken.get()) open();
else showSignin();
