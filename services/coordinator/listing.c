/* listing.c - the list of live claims and reservations, sweeping expired
 * entries out of the indexes on the way (the seed cleans stale claims on
 * each request; Redis expiry removes the records themselves). */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "scripts.h"
#include "shared/log.h"

/* list_id_of takes the id out of a key's hash tag: "sq:{abc}" -> "abc". */
static int list_id_of(const char *key, size_t len, char *id, size_t cap)
{
    const char *open = memchr(key, '{', len);
    const char *close = open ? memchr(open, '}', len - (size_t)(open - key)) : NULL;
    if (!open || !close || (size_t)(close - open - 1) >= cap)
        return -1;
    size_t n = (size_t)(close - open - 1);
    memcpy(id, open + 1, n);
    id[n] = '\0';
    return 0;
}

static void list_expired(sh_worker *w, const sh_reply *keys, const char *ns, bool claims)
{
    for (size_t i = 0; i < sh_reply_count(keys); i++) {
        size_t len;
        const char *k = sh_reply_string(sh_reply_elem(keys, i), &len);
        char id[SH_ID_MAX + 1], topic[COORD_KEY_MAX];
        if (!k || list_id_of(k, len, id, sizeof id) != 0)
            continue;
        sh_val *body = sh_val_new_map();
        sh_val_set_cstr(body, "sq", sh_val_new_cstr(id));
        sh_val_set_cstr(body, claims ? "namespace" : "log", sh_val_new_cstr(ns));
        if (claims)
            coord_topic_claim(topic, sizeof topic, ns, id);
        else
            coord_topic_reservation(topic, sizeof topic, ns, id);
        coord_publish(w, topic, SH_EVENT_EXPIRED, body);
    }
}

int coord_list(sh_worker *w, const char *ns, const char *log, sh_val **out, sh_error *err)
{
    *out = NULL;
    char cidx[COORD_KEY_MAX], ridx[COORD_KEY_MAX];
    if (coord_key_claim_index(cidx, sizeof cidx, ns) < 0 ||
        coord_key_reservation_index(ridx, sizeof ridx, log) < 0)
        return sh_error_set(err, SH_EINVAL, "invalid namespace \"%.40s\" or log \"%.40s\"", ns,
                            log);
    sh_cmd *c = sh_cmd_new_eval(&coord_script_list, 2);
    sh_cmd_str(c, cidx);
    sh_cmd_str(c, ridx);
    sh_cmd_int(c, coord_env_of(w)->list_max);
    sh_reply *r = NULL;
    int rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    if (sh_reply_kind(r) != SH_REPLY_ARRAY || sh_reply_count(r) != 4) {
        sh_reply_free(r);
        return sh_error_set(err, SH_EINTERNAL, "unexpected reply to list");
    }
    list_expired(w, sh_reply_elem(r, 0), ns, true);
    list_expired(w, sh_reply_elem(r, 2), log, false);
    sh_val *claims = sh_val_new_map(), *res = sh_val_new_map(), *all = sh_val_new_map();
    const sh_reply *cl = sh_reply_elem(r, 1), *rl = sh_reply_elem(r, 3);
    for (size_t i = 0; claims && i < sh_reply_count(cl); i++) {
        coord_claim c0;
        coord_claim_row(sh_reply_elem(cl, i), ns, NULL, &c0);
        sh_val_set_cstr(claims, c0.id, coord_claim_val(&c0));
    }
    for (size_t i = 0; res && i < sh_reply_count(rl); i++) {
        coord_reservation r0;
        coord_reservation_row(sh_reply_elem(rl, i), log, NULL, &r0);
        sh_val_set_cstr(res, r0.id, coord_reservation_val(&r0));
    }
    sh_reply_free(r);
    if (!claims || !res || !all) {
        sh_val_free(claims);
        sh_val_free(res);
        sh_val_free(all);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    int crc = sh_val_set_cstr(all, "claims", claims);
    int rrc = sh_val_set_cstr(all, "reservations", res);
    if (crc || rrc) {
        sh_val_free(all);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = all;
    return SH_OK;
}
