/* keys.c - builders of the coordinator's Redis keys and event topics. */
#include "keys.h"

#include <stdio.h>
#include <string.h>

#define COORD_DEFAULT_NS  "sq"
#define COORD_DEFAULT_LOG "refund"

bool coord_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > COORD_NS_MAX || name[0] < 'a' || name[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int keys_fmt(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
    int n = snprintf(buf, len, fmt, a, b);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* keys_item builds <prefix>{id}<suffix> for the default name, or
 * <prefix><name>:{id}<suffix> for another. */
static int keys_item(char *buf, size_t len, const char *prefix, const char *deflt, const char *name,
                     const char *id, const char *suffix)
{
    if (!coord_name_valid(name) || !sh_id_valid(id, strlen(id)))
        return -1;
    char pre[64];
    if (strcmp(name, deflt) == 0)
        snprintf(pre, sizeof pre, "%s", prefix);
    else
        snprintf(pre, sizeof pre, "%s%s:", prefix, name);
    return sh_key_build(buf, len, pre, id, suffix);
}

int coord_key_claim(char *buf, size_t len, const char *ns, const char *id)
{
    return keys_item(buf, len, SH_KEY_SQ, COORD_DEFAULT_NS, ns, id, NULL);
}

int coord_key_fence(char *buf, size_t len, const char *ns, const char *id)
{
    return keys_item(buf, len, SH_KEY_SQ, COORD_DEFAULT_NS, ns, id, ":fence");
}

int coord_key_claim_index(char *buf, size_t len, const char *ns)
{
    return coord_name_valid(ns) ? keys_fmt(buf, len, "%sindex:%s", SH_KEY_SQ, ns) : -1;
}

int coord_key_reservation(char *buf, size_t len, const char *log, const char *id)
{
    return keys_item(buf, len, SH_KEY_REFUND, COORD_DEFAULT_LOG, log, id, NULL);
}

int coord_key_rows(char *buf, size_t len, const char *log)
{
    return coord_name_valid(log) ? keys_fmt(buf, len, "%srows:%s", SH_KEY_REFUND, log) : -1;
}

int coord_key_rows_max(char *buf, size_t len, const char *log)
{
    return coord_name_valid(log) ? keys_fmt(buf, len, "%s" COORD_ROWS_MAX "%s", SH_KEY_REFUND, log)
                                 : -1;
}

int coord_key_rows_max_prefix(char *buf, size_t len)
{
    return keys_fmt(buf, len, "%s" COORD_ROWS_MAX "%s", SH_KEY_REFUND, "");
}

int coord_key_reservation_logs(char *buf, size_t len)
{
    return keys_fmt(buf, len, "%s%s", SH_KEY_REFUND, "logs");
}

int coord_key_reservation_index(char *buf, size_t len, const char *log)
{
    return coord_name_valid(log) ? keys_fmt(buf, len, "%sindex:%s", SH_KEY_REFUND, log) : -1;
}

int coord_topic_claim(char *buf, size_t len, const char *ns, const char *id)
{
    char pre[64];
    snprintf(pre, sizeof pre, "%s%s:", SH_TOPIC_CLAIM, ns);
    return keys_fmt(buf, len, "%s%s", pre, id);
}

int coord_topic_reservation(char *buf, size_t len, const char *log, const char *id)
{
    char pre[64];
    snprintf(pre, sizeof pre, "%s%s:", SH_TOPIC_RESERVATION, log);
    return keys_fmt(buf, len, "%s%s", pre, id);
}

int coord_key_account(char *buf, size_t len, const char *id)
{
    return sh_key_build(buf, len, SH_KEY_ACCOUNT, id, NULL);
}

int coord_key_account_req(char *buf, size_t len, const char *request_id)
{
    return sh_key_build(buf, len, SH_KEY_ACCOUNT "req:", request_id, NULL);
}

int coord_key_lease_req(char *buf, size_t len, const char *token)
{
    return sh_key_build(buf, len, SH_KEY_SCHED "lease:", token, NULL);
}

int coord_key_account_secret(char *buf, size_t len, const char *id)
{
    return sh_key_build(buf, len, SH_KEY_ACCOUNT, id, ":secret");
}

int coord_key_account_refresh(char *buf, size_t len, const char *id)
{
    return sh_key_build(buf, len, SH_KEY_ACCOUNT, id, ":refresh");
}

void coord_sched_keys_init(coord_sched_keys *k)
{
    snprintf(k->ids, sizeof k->ids, "%sids", SH_KEY_ACCOUNT);
    snprintf(k->due, sizeof k->due, "%sdue", SH_KEY_SCHED);
    snprintf(k->queue, sizeof k->queue, "%squeue", SH_KEY_SCHED);
    snprintf(k->leases, sizeof k->leases, "%sleases", SH_KEY_SCHED);
    snprintf(k->slots, sizeof k->slots, "%sslots", SH_KEY_SCHED);
    snprintf(k->errors, sizeof k->errors, "%serrors", SH_KEY_SCHED);
    snprintf(k->tick, sizeof k->tick, "%stick", SH_KEY_SCHED);
    snprintf(k->watchers, sizeof k->watchers, "%swatchers", SH_KEY_SCHED);
    snprintf(k->account_prefix, sizeof k->account_prefix, "%s", SH_KEY_ACCOUNT);
}

int coord_account_keys(const char *id, char key[COORD_KEY_MAX], coord_sched_keys *k, sh_error *err)
{
    if (coord_key_account(key, COORD_KEY_MAX, id) < 0)
        return sh_error_set(err, SH_EINVAL, "invalid account id");
    if (k)
        coord_sched_keys_init(k);
    return SH_OK;
}

int coord_topic_account(char *buf, size_t len, const char *id)
{
    return keys_fmt(buf, len, "%s%s", SH_TOPIC_ACCOUNT, id);
}
