/* sse_types.c - the typed events of GET /api/events: their names and
 * families, the coordinator and sync-worker events each is made from, the fields its data
 * carries, and the ?types= filter. Nothing here holds state or a lock. */
#include <stdio.h>
#include <string.h>

#include "gw_json.h"
#include "gw_sse_int.h"

typedef struct sse_type_row {
    const char *name;
    unsigned family;
    const char *topic; /* the coordinator topic prefix it comes from, or NULL */
    const char *kind;
} sse_type_row;

/* Indexed by enum gw__sse_type. */
static const sse_type_row sse_types[GW__SSE_TYPE_COUNT] = {
    {"claim.claimed", GW_SSE_FAMILY_CLAIM, SH_TOPIC_CLAIM, SH_EVENT_CLAIMED},
    {"claim.renewed", GW_SSE_FAMILY_CLAIM, SH_TOPIC_CLAIM, SH_EVENT_RENEWED},
    {"claim.released", GW_SSE_FAMILY_CLAIM, SH_TOPIC_CLAIM, SH_EVENT_RELEASED},
    {"claim.status", GW_SSE_FAMILY_CLAIM, SH_TOPIC_CLAIM, SH_EVENT_STATUS},
    {"claim.expired", GW_SSE_FAMILY_CLAIM, SH_TOPIC_CLAIM, SH_EVENT_EXPIRED},
    {"reservation.reserved", GW_SSE_FAMILY_RESERVATION, SH_TOPIC_RESERVATION, SH_EVENT_RESERVED},
    {"reservation.renewed", GW_SSE_FAMILY_RESERVATION, SH_TOPIC_RESERVATION, SH_EVENT_RENEWED},
    {"reservation.released", GW_SSE_FAMILY_RESERVATION, SH_TOPIC_RESERVATION, SH_EVENT_RELEASED},
    {"reservation.expired", GW_SSE_FAMILY_RESERVATION, SH_TOPIC_RESERVATION, SH_EVENT_EXPIRED},
    {"account.created", GW_SSE_FAMILY_ACCOUNT, SH_TOPIC_ACCOUNT, SH_EVENT_CREATED},
    {"account.updated", GW_SSE_FAMILY_ACCOUNT, SH_TOPIC_ACCOUNT, SH_EVENT_UPDATED},
    {"account.deleted", GW_SSE_FAMILY_ACCOUNT, SH_TOPIC_ACCOUNT, SH_EVENT_DELETED},
    {"account.status", GW_SSE_FAMILY_ACCOUNT, SH_TOPIC_ACCOUNT, SH_EVENT_STATUS},
    {"mail.new", GW_SSE_FAMILY_MAIL, SH_TOPIC_MAIL_EVENT, "mail.new"},
    {"mail.flags", GW_SSE_FAMILY_MAIL, SH_TOPIC_MAIL_EVENT, "mail.flags"},
    {"mail.removed", GW_SSE_FAMILY_MAIL, SH_TOPIC_MAIL_EVENT, "mail.removed"},
    {"folder.counts", GW_SSE_FAMILY_MAIL, SH_TOPIC_MAIL_EVENT, "folder.counts"},
    {"sync.status", GW_SSE_FAMILY_MAIL, SH_TOPIC_MAIL_EVENT, "sync.status"},
    {"auth.error", GW_SSE_FAMILY_MAIL, SH_TOPIC_MAIL_EVENT, "auth.error"},
    {"health", GW_SSE_FAMILY_HEALTH, NULL, NULL},
    {"metrics", GW_SSE_FAMILY_METRICS, NULL, NULL},
    {"streams", GW_SSE_FAMILY_STREAMS, NULL, NULL},
};

/* What of an account an event may show: the fields GET /api/accounts/:id
 * passes on, so a secret never leaves even if one were published. */
static const char *const sse_status_fields[] = {"syncStatus", "errorMessage", "lastSyncedAt",
                                                "nextSyncAt", NULL};
static const char *const sse_account_fields[] = {
    "emailAddress", "imapHost",   "imapPort",
    "security",     "username",   "folders",
    "tlsVerify",    "syncStatus", "errorMessage",
    "lastSyncedAt", "nextSyncAt", "consecutiveFailures",
    "createdAt",    "updatedAt",  "watchFolders",
    "watch",        "auth",       NULL};

const char *gw__sse_type_name(int type)
{
    return type >= 0 && type < GW__SSE_TYPE_COUNT ? sse_types[type].name : NULL;
}

unsigned gw__sse_type_family(int type)
{
    return type >= 0 && type < GW__SSE_TYPE_COUNT ? sse_types[type].family : 0;
}

unsigned gw_sse_family_of(const char *type)
{
    for (int t = 0; t < GW__SSE_TYPE_COUNT; t++)
        if (strcmp(sse_types[t].name, type) == 0)
            return sse_types[t].family;
    return 0;
}

uint64_t gw__sse_types_of_families(unsigned families)
{
    uint64_t mask = 0;
    for (int t = 0; t < GW__SSE_TYPE_COUNT; t++)
        if (sse_types[t].family & families)
            mask |= UINT64_C(1) << t;
    return mask;
}

int gw__sse_type_of(const char *topic, const char *kind)
{
    if (!topic || !kind)
        return -1;
    for (int t = 0; t < GW__SSE_TYPE_COUNT; t++) {
        const sse_type_row *row = &sse_types[t];
        if (row->topic && strncmp(topic, row->topic, strlen(row->topic)) == 0 &&
            strcmp(kind, row->kind) == 0)
            return t;
    }
    return -1;
}

/* sse_types_match: the types a pattern names, a trailing '*' matching any
 * rest of a name ("claim.*", "*"). */
static uint64_t sse_types_match(const char *pat, size_t len)
{
    bool star = len > 0 && pat[len - 1] == '*';
    size_t n = star ? len - 1 : len;
    uint64_t mask = 0;
    for (int t = 0; t < GW__SSE_TYPE_COUNT; t++) {
        const char *name = sse_types[t].name;
        if (strncmp(name, pat, n) == 0 && (star || name[n] == '\0'))
            mask |= UINT64_C(1) << t;
    }
    return mask;
}

int gw__sse_types_parse(const char *list, uint64_t *mask, char *bad, size_t badlen)
{
    *mask = 0;
    if (bad && badlen)
        bad[0] = '\0';
    if (!list || !*list) {
        *mask = gw__sse_types_of_families(GW_SSE_FAMILY_ALL);
        return SH_OK;
    }
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && p[0] == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        uint64_t m = len ? sse_types_match(p, len) : 0;
        if (!m) {
            if (bad && badlen)
                snprintf(bad, badlen, "%.*s", (int)(len < 64 ? len : 64), p);
            return SH_EINVAL;
        }
        *mask |= m;
        if (!end)
            return SH_OK;
        p = end + 1;
    }
}

/* sse_types_members writes the members of map m but those in skip as JSON
 * object members, each preceded by a comma; with keep, only those. */
static int sse_types_members(sh_buf *out, const sh_val *m, const char *const *keep,
                             const char *const *skip)
{
    int rc = SH_OK;
    for (size_t i = 0; rc == SH_OK && i < sh_val_len(m); i++) {
        size_t klen;
        const char *k = sh_val_key_at(m, i, &klen);
        bool take = !keep;
        for (size_t j = 0; keep && keep[j] && !take; j++)
            take = strlen(keep[j]) == klen && memcmp(keep[j], k, klen) == 0;
        for (size_t j = 0; skip && skip[j] && take; j++)
            take = !(strlen(skip[j]) == klen && memcmp(skip[j], k, klen) == 0);
        if (!take)
            continue;
        rc = sh_buf_append(out, ",", 1);
        if (rc == SH_OK)
            rc = gw_json_write_member(out, k, klen, sh_val_value_at(m, i));
    }
    return rc;
}

int gw__sse_type_fields(int type, const sh_val *payload, sh_buf *out)
{
    /* The claim's fencing token lets its holder act on it: it stays with
     * the holder. */
    static const char *const item_skip[] = {"kind", "token", NULL};
    if (sh_val_type_of(payload) != SH_VAL_MAP)
        return SH_EINVAL;
    unsigned fam = gw__sse_type_family(type);
    if (fam == GW_SSE_FAMILY_CLAIM || fam == GW_SSE_FAMILY_RESERVATION)
        return sse_types_members(out, payload, NULL, item_skip);
    if (fam == GW_SSE_FAMILY_MAIL) {
        /* The stream's own id, type and createdAt come first; the log's id
         * stays as eventId. */
        static const char *const mail_skip[] = {"kind", "prevId", "id", "type", "createdAt", NULL};
        size_t idlen;
        const char *id = sh_val_get_str(payload, "id", &idlen);
        if (!id || !sh_val_get_str(payload, "accountId", NULL))
            return SH_EINVAL;
        int rc = sh_buf_puts(out, ",\"eventId\":");
        if (rc == SH_OK)
            rc = gw_json_write_str(out, id, idlen);
        return rc == SH_OK ? sse_types_members(out, payload, NULL, mail_skip) : rc;
    }
    if (fam != GW_SSE_FAMILY_ACCOUNT)
        return SH_EINVAL;
    size_t idlen;
    const char *id = sh_val_get_str(payload, "id", &idlen);
    if (!id)
        return SH_EINVAL;
    int rc = sh_buf_puts(out, ",\"accountId\":");
    if (rc == SH_OK)
        rc = gw_json_write_str(out, id, idlen);
    if (rc != SH_OK || type == GW__SSE_ACCOUNT_DELETED)
        return rc;
    if (type == GW__SSE_ACCOUNT_STATUS)
        return sse_types_members(out, payload, sse_status_fields, NULL);
    /* created, updated: the account, as GET /api/accounts/:id shows it */
    rc = sh_buf_puts(out, ",\"account\":{\"id\":");
    if (rc == SH_OK)
        rc = gw_json_write_str(out, id, idlen);
    if (rc == SH_OK)
        rc = sse_types_members(out, payload, sse_account_fields, NULL);
    if (rc == SH_OK)
        rc = sh_buf_append(out, "}", 1);
    return rc;
}
