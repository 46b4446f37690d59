/* account_list.c - reads of many accounts, in pages, so that no single
 * Redis call walks every account: the account list (oldest first, at most
 * QUEUE_LIST_MAX), whose "error" and "auth_error" filters read only the
 * accounts of the error index (sched:errors, kept by the scripts that set
 * those statuses), and the check of which ids still name an account. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "scripts.h"

/* Accounts read by one call: a page costs Redis well under a millisecond. */
#define LIST_PAGE 256

typedef struct list_row {
    long long created; /* ms, the account's score in the ids index */
    const char *id;    /* in view */
    sh_val *view;
} list_row;

typedef struct list_acc {
    list_row *rows;
    size_t n, cap;
    size_t max;
} list_acc;

static void list_acc_free(list_acc *a)
{
    for (size_t i = 0; i < a->n; i++)
        sh_val_free(a->rows[i].view);
    free(a->rows);
}

/* list_rows reads the accounts ids[0..n) that match status into a. */
static int list_rows(sh_worker *w, const coord_sched_keys *k, const char *status,
                     const char *const *ids, const size_t *lens, size_t n, list_acc *a,
                     sh_error *err)
{
    sh_cmd *c = sh_cmd_new_eval(&coord_script_account_rows, 1);
    sh_cmd_str(c, k->ids);
    sh_cmd_str(c, k->account_prefix);
    sh_cmd_str(c, status ? status : "");
    for (size_t i = 0; i < n; i++)
        sh_cmd_arg(c, ids[i], lens[i]);
    sh_reply *r;
    int rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    size_t got = sh_reply_count(r) / 2;
    if (a->n + got > a->cap) {
        size_t cap = a->cap ? a->cap : 64;
        while (cap < a->n + got)
            cap *= 2;
        list_row *rows = realloc(a->rows, cap * sizeof *rows);
        if (!rows) {
            sh_reply_free(r);
            return sh_error_set(err, SH_ENOMEM, "out of memory");
        }
        a->rows = rows;
        a->cap = cap;
    }
    for (size_t i = 0; i < got; i++) {
        list_row *row = &a->rows[a->n];
        row->created = sh_reply_ll(sh_reply_elem(r, 2 * i), NULL);
        row->view = coord_account_view(sh_reply_elem(r, 2 * i + 1), NULL);
        row->id = row->view ? sh_val_get_str(row->view, "id", NULL) : NULL;
        if (!row->view) {
            sh_reply_free(r);
            return sh_error_set(err, SH_ENOMEM, "out of memory");
        }
        if (!row->id)
            row->id = "";
        a->n++;
    }
    sh_reply_free(r);
    return SH_OK;
}

/* list_page_ids collects the strings of an array reply's elements from
 * first on, every step-th, into ids/lens (at most LIST_PAGE). */
static size_t list_page_ids(const sh_reply *arr, size_t first, size_t step, const char **ids,
                            size_t *lens)
{
    size_t n = 0;
    for (size_t i = first; i < sh_reply_count(arr) && n < LIST_PAGE; i += step) {
        ids[n] = sh_reply_string(sh_reply_elem(arr, i), &lens[n]);
        if (ids[n])
            n++;
    }
    return n;
}

/* list_by_creation walks the ids index by creation time, one page at a
 * time, until a holds max accounts. A page starts at the last creation
 * time seen, past the ids already seen at that time, so accounts created
 * or deleted meanwhile shift nothing that is still to come. */
static int list_by_creation(sh_worker *w, const coord_sched_keys *k, const char *status,
                            list_acc *a, sh_error *err)
{
    long long last = -1, at_last = 0;
    for (;;) {
        sh_cmd *c = sh_cmd_new("ZRANGE");
        sh_cmd_str(c, k->ids);
        if (last < 0)
            sh_cmd_str(c, "-inf");
        else
            sh_cmd_int(c, last);
        sh_cmd_str(c, "+inf");
        sh_cmd_str(c, "BYSCORE");
        sh_cmd_str(c, "LIMIT");
        sh_cmd_int(c, at_last);
        sh_cmd_int(c, LIST_PAGE);
        sh_cmd_str(c, "WITHSCORES");
        sh_reply *r;
        int rc = sh_store_call(w->store, c, &r, err);
        if (rc)
            return rc;
        const char *ids[LIST_PAGE];
        size_t lens[LIST_PAGE];
        size_t n = list_page_ids(r, 0, 2, ids, lens);
        for (size_t i = 0; i < n; i++) {
            long long score = sh_reply_ll(sh_reply_elem(r, 2 * i + 1), NULL);
            at_last = score == last ? at_last + 1 : 1;
            last = score;
        }
        rc = n ? list_rows(w, k, status, ids, lens, n, a, err) : SH_OK;
        sh_reply_free(r);
        if (rc || n < LIST_PAGE || a->n >= a->max)
            return rc;
    }
}

static int list_row_cmp(const void *x, const void *y)
{
    const list_row *a = x, *b = y;
    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* list_errors reads the accounts of the error index, a page of ids at a
 * time, and puts them oldest first. */
static int list_errors(sh_worker *w, const coord_sched_keys *k, const char *status, list_acc *a,
                       sh_error *err)
{
    char cursor[32] = "0";
    do {
        sh_cmd *c = sh_cmd_new("SSCAN");
        sh_cmd_str(c, k->errors);
        sh_cmd_str(c, cursor);
        sh_cmd_str(c, "COUNT");
        sh_cmd_int(c, LIST_PAGE);
        sh_reply *r;
        int rc = sh_store_call(w->store, c, &r, err);
        if (rc)
            return rc;
        size_t len;
        const char *cur = sh_reply_string(sh_reply_elem(r, 0), &len);
        if (sh_reply_count(r) != 2 || !cur || len >= sizeof cursor) {
            sh_reply_free(r);
            return sh_error_set(err, SH_EINTERNAL, "unexpected SSCAN reply");
        }
        memcpy(cursor, cur, len);
        cursor[len] = '\0';
        const sh_reply *members = sh_reply_elem(r, 1);
        const char *ids[LIST_PAGE];
        size_t lens[LIST_PAGE];
        /* SSCAN may return a little more than COUNT: take it in pages. */
        for (size_t first = 0; rc == SH_OK && first < sh_reply_count(members); first += LIST_PAGE) {
            size_t n = list_page_ids(members, first, 1, ids, lens);
            rc = n ? list_rows(w, k, status, ids, lens, n, a, err) : SH_OK;
        }
        sh_reply_free(r);
        if (rc)
            return rc;
    } while (strcmp(cursor, "0") != 0);
    if (a->n)
        qsort(a->rows, a->n, sizeof *a->rows, list_row_cmp);
    return SH_OK;
}

int coord_account_list(sh_worker *w, const char *status, sh_val **out, sh_error *err)
{
    *out = NULL;
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    list_acc a = {.max = (size_t)coord_env_of(w)->list_max};
    bool indexed = status && (strcmp(status, "error") == 0 || strcmp(status, "auth_error") == 0);
    int rc =
        indexed ? list_errors(w, &k, status, &a, err) : list_by_creation(w, &k, status, &a, err);
    sh_val *arr = rc ? NULL : sh_val_new_array();
    for (size_t i = 0; arr && i < a.n && i < a.max; i++) {
        sh_val *view = a.rows[i].view;
        a.rows[i].view = NULL; /* the array's now, also on failure */
        if (sh_val_push(arr, view) != SH_OK) {
            sh_val_free(arr);
            arr = NULL;
        }
    }
    list_acc_free(&a);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map();
    if (!arr || !m || sh_val_set_cstr(m, "accounts", arr)) {
        sh_val_free(m);
        if (!m)
            sh_val_free(arr);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = m;
    return SH_OK;
}

int coord_account_exists(sh_worker *w, const sh_val *ids, sh_val **out, sh_error *err)
{
    *out = NULL;
    size_t n = sh_val_len(ids);
    if (sh_val_type_of(ids) != SH_VAL_ARRAY || n == 0 || n > COORD_EXISTS_MAX)
        return sh_error_set(err, SH_EINVAL, "\"ids\" must be an array of 1 to %d account ids",
                            COORD_EXISTS_MAX);
    sh_cmd **cmds = calloc(n, sizeof *cmds);
    sh_reply **rs = calloc(n, sizeof *rs);
    int rc = cmds && rs ? SH_OK : sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; rc == SH_OK && i < n; i++) {
        const char *id = sh_val_str(sh_val_at(ids, i), NULL);
        char key[COORD_KEY_MAX];
        if (!id || coord_key_account(key, sizeof key, id) < 0) {
            rc = sh_error_set(err, SH_EINVAL, "\"ids\"[%zu] is not a valid account id", i);
            break;
        }
        cmds[i] = sh_cmd_new("EXISTS");
        sh_cmd_str(cmds[i], key);
    }
    if (rc == SH_OK)
        rc = sh_store_pipeline(w->store, cmds, n, rs, err);
    sh_val *arr = rc ? NULL : sh_val_new_array();
    if (rc == SH_OK && !arr)
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; rc == SH_OK && i < n; i++) {
        if (sh_reply_kind(rs[i]) != SH_REPLY_INTEGER) {
            rc = sh_store_reply_check(rs[i], err);
            if (rc == SH_OK)
                rc = sh_error_set(err, SH_EINTERNAL, "unexpected reply to EXISTS");
        } else if (sh_val_push(arr, sh_val_new_bool(sh_reply_integer(rs[i]) == 1)) != SH_OK) {
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        }
    }
    for (size_t i = 0; cmds && i < n; i++)
        sh_cmd_free(cmds[i]);
    for (size_t i = 0; rs && i < n; i++)
        sh_reply_free(rs[i]);
    free(cmds);
    free(rs);
    if (rc) {
        sh_val_free(arr);
        return rc;
    }
    sh_val *m = sh_val_new_map();
    if (!m) {
        sh_val_free(arr);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    if (sh_val_set_cstr(m, "exists", arr) != SH_OK) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = m;
    return SH_OK;
}
