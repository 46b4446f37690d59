/* mailstore_int.h - what the files of the mail store share (mailstore.c,
 * mail_views.c, mail_pending.c, mail_change.c); the sync_mail_ names of mailstore.h are
 * its interface, the sync__mail_ names here its internals. */
#ifndef SYNC_MAILSTORE_INT_H
#define SYNC_MAILSTORE_INT_H

#include <stdint.h>

#include "imap.h"
#include "shared/err.h"
#include "shared/store.h"

/* One field of a stored message's hash: a string, or the number num when
 * str is NULL. */
typedef struct sync__mail_field {
    const char *name;
    const char *str;
    long long num;
} sync__mail_field;

#define SYNC__MAIL_FIELDS 12

/* sync__mail_fields lists the fields a new message m is stored with (out
 * borrows m's strings): the one list the hash and the mail.new event are
 * made of. */
void sync__mail_fields(const char *folder, uint32_t uidvalidity, const sync_msg *m,
                       sync__mail_field *out);
/* sync__mail_fields_args adds the fields to c as name, value pairs. */
int sync__mail_fields_args(sh_cmd *c, const sync__mail_field *f);

/* sync__mail_key_err sets err for a key that cannot be built (too long). */
int sync__mail_key_err(sh_error *err);

#endif
