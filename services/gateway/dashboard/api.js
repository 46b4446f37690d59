// api.js - the gateway's HTTP API as the dashboard uses it: the API token
// (asked once, kept in this tab's sessionStorage), JSON requests carrying
// it, and short-lived tokens minted with it for the event streams, which
// cannot send an Authorization header.

const KEY = "kvstack.apiToken";

export const apiToken = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// api("GET", "api/queue") -> the reply's JSON; ApiError on any other status
// than 2xx. Paths are relative, so the page works under any prefix.
export async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + apiToken.get() };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "the gateway did not answer (" + e.message + ")");
  }
  let doc = null;
  try {
    doc = await res.json();
  } catch (e) {
    doc = null;
  }
  if (!res.ok) throw new ApiError(res.status, (doc && doc.error) || res.status + " " + res.statusText);
  return doc;
}

// GET /readyz needs no token, but names its checks only to the full API
// token; it answers 503 with the same shape when a check fails, which is an
// answer here, not an error.
export async function readiness() {
  const headers = { Authorization: "Bearer " + apiToken.get() };
  const res = await fetch("readyz", { headers, cache: "no-store" });
  return res.json();
}

// Seconds a minted token lives; streams renew it well before that.
export const TOKEN_TTL = 300;

// mint(["progress:abc"]) -> {token, expiresAt, scopes}.
export function mint(scopes, ttlSeconds = TOKEN_TTL) {
  return api("POST", "api/tokens", { scopes, ttlSeconds });
}
