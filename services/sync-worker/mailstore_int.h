/* mailstore_int.h - what the files of the mail store share (mailstore.c,
 * mail_views.c, mail_pending.c); the sync_mail_ names of mailstore.h are
 * its interface, the sync__mail_ names here its internals. */
#ifndef SYNC_MAILSTORE_INT_H
#define SYNC_MAILSTORE_INT_H

#include "shared/err.h"
#include "shared/store.h"

/* sync__mail_key_err sets err for a key that cannot be built (too long). */
int sync__mail_key_err(sh_error *err);

#endif
