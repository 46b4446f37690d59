// panel_accounts.js - the email accounts: each one's sync status, last
// error, next sync and folder counts. Read once (GET /api/accounts, then
// each account for its folders), then kept by the account.* events (and
// folder.counts and sync.status when the stream carries mail events); as
// those events carry no folder counts, an account event also re-reads that
// account, whose answer has them.

import { api } from "./api.js";
import { el, KeyedTable, ticking, when, statusBadge } from "./view.js";

export class AccountsPanel {
  constructor(onError) {
    this.table = new KeyedTable("accounts", ["account", "sync", "last error", "next sync", "folders"]);
    this.accounts = new Map();
    this.onError = onError;
    this.rereads = new Map();
  }

  async load() {
    try {
      const list = (await api("GET", "api/accounts")).accounts || [];
      const seen = new Set(list.map((a) => a.id));
      for (const k of this.table.keys()) if (!seen.has(k)) this.drop(k);
      for (const a of list) this.show(a);
      await Promise.all(list.map((a) => this.reread(a.id)));
    } catch (e) {
      this.onError("accounts: " + e.message);
    }
  }

  async reread(id) {
    try {
      this.show(await api("GET", "api/accounts/" + encodeURIComponent(id)));
    } catch (e) {
      if (e.status === 404) this.drop(id);
      else this.onError("account " + id + ": " + e.message);
    }
  }

  rereadSoon(id) {
    clearTimeout(this.rereads.get(id));
    this.rereads.set(id, setTimeout(() => {
      this.rereads.delete(id);
      this.reread(id);
    }, 150));
  }

  drop(id) {
    this.accounts.delete(id);
    this.table.remove(id);
  }

  // show merges fields into the account known and redraws its row.
  show(fields) {
    if (!fields || !fields.id) return;
    fields = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    const known = this.accounts.get(fields.id) || {};
    // Folder names without counts do not replace counts already known.
    if (Array.isArray(fields.folders) && Array.isArray(known.folders) &&
        fields.folders.every((f) => f.total == null)) {
      fields = Object.assign({}, fields, { folders: known.folders });
    }
    const a = Object.assign(known, fields);
    this.accounts.set(a.id, a);
    const folders = (a.folders || []).map((f) =>
      el("span", { class: "folder", "data-folder": f.name },
        f.name + (f.total != null ? " " + (f.unread || 0) + "/" + f.total : "")));
    const foldersCell = el("span", {});
    folders.forEach((f, i) => foldersCell.append(i ? ", " : "", f));
    const next = a.nextSyncAt;
    this.table.set(a.id, [
      el("span", { title: a.id }, a.emailAddress || a.id),
      statusBadge(a.syncStatus),
      a.errorMessage ? el("span", { class: "error" }, a.errorMessage) : el("span", { class: "muted" }, "–"),
      next ? ticking(() => when(next)) : "–",
      foldersCell,
    ]);
  }

  event(type, data) {
    const d = data || {};
    const id = d.accountId || (d.account && d.account.id);
    if (!id) return;
    if (type === "account.deleted") {
      this.drop(id);
      return;
    }
    if (type === "folder.counts") {
      const a = this.accounts.get(id);
      if (!a) return;
      const folders = (a.folders || []).filter((f) => f.name !== d.folder);
      folders.push({ name: d.folder, total: d.total, unread: d.unread });
      folders.sort((x, y) => (x.name < y.name ? -1 : 1));
      this.show({ id, folders });
      return;
    }
    if (type === "sync.status" || type === "account.status") {
      const { syncStatus, errorMessage, lastSyncedAt, nextSyncAt } = d;
      this.show({ id, syncStatus, errorMessage, lastSyncedAt, nextSyncAt });
    } else if (d.account) {
      this.show(Object.assign({ id }, d.account));
    }
    this.rereadSoon(id);
  }
}
