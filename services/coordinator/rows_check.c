/* rows_check.c - the start-up check that RESERVE_FIRST_ROW is not below the
 * first row of a log that already handed rows out: those rows would be
 * handed out a second time. The reserve script records each log and its
 * first row; one script reads them all back. */
#include <string.h>

#include "ops.h"
#include "scripts.h"

int coord_rows_check_first(sh_store *store, long long first_row, sh_error *err)
{
    char logs[COORD_KEY_MAX], prefix[COORD_KEY_MAX];
    coord_key_reservation_logs(logs, sizeof logs);
    coord_key_rows_max_prefix(prefix, sizeof prefix);
    sh_cmd *c = sh_cmd_new_eval(&coord_script_rows_first, 1);
    sh_cmd_str(c, logs);
    sh_cmd_str(c, prefix);
    sh_cmd_int(c, first_row);
    sh_reply *r = NULL;
    int rc = sh_store_call(store, c, &r, err);
    if (rc)
        return rc;
    if (sh_reply_count(r) == 2) {
        size_t llen, flen;
        const char *log = sh_reply_string(sh_reply_elem(r, 0), &llen);
        const char *first = sh_reply_string(sh_reply_elem(r, 1), &flen);
        rc = sh_error_set(err, SH_EINVAL,
                          "RESERVE_FIRST_ROW (%lld) is below row %.*s, the first row of log "
                          "\"%.*s\": its rows from there on are handed out already; set it to "
                          "%.*s or more",
                          first_row, (int)flen, first ? first : "", (int)llen, log ? log : "",
                          (int)flen, first ? first : "");
    }
    sh_reply_free(r);
    return rc;
}
