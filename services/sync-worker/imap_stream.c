/* imap_stream.c - the stream under each IMAP session that counts the bytes
 * of the server's reply to the last command sent: libetpan reads a literal
 * of whatever size the server announces, so a hostile or broken server
 * could otherwise make it read (and hold) gigabytes. It also turns the end
 * of the connection into an error: libetpan 1.9.4 reads the rest of a
 * literal in a loop that takes a read of 0 bytes for "nothing yet", so a
 * server that closed inside a literal would keep a thread spinning. */
#include <stdlib.h>

#include "imap_int.h"

static ssize_t imap_cap_read(mailstream_low *s, void *buf, size_t count)
{
    sync__imap_cap *c = s->data;
    if (c->used >= SYNC__IMAP_REPLY_MAX) {
        c->tripped = true;
        return -1;
    }
    if (count > SYNC__IMAP_REPLY_MAX - c->used)
        count = SYNC__IMAP_REPLY_MAX - c->used;
    ssize_t r = mailstream_low_read(c->inner, buf, count);
    if (r == 0)
        return -1; /* the server closed the connection */
    if (r > 0)
        c->used += (size_t)r;
    return r;
}

static ssize_t imap_cap_write(mailstream_low *s, const void *buf, size_t count)
{
    sync__imap_cap *c = s->data;
    c->used = 0;
    return mailstream_low_write(c->inner, buf, count);
}

static int imap_cap_close(mailstream_low *s)
{
    sync__imap_cap *c = s->data;
    return mailstream_low_close(c->inner);
}

static int imap_cap_get_fd(mailstream_low *s)
{
    sync__imap_cap *c = s->data;
    return mailstream_low_get_fd(c->inner);
}

static void imap_cap_free(mailstream_low *s)
{
    sync__imap_cap *c = s->data;
    mailstream_low_free(c->inner);
    free(c);
    free(s);
}

static void imap_cap_cancel(mailstream_low *s)
{
    sync__imap_cap *c = s->data;
    mailstream_low_cancel(c->inner);
}

static struct mailstream_cancel *imap_cap_get_cancel(mailstream_low *s)
{
    sync__imap_cap *c = s->data;
    return mailstream_low_get_cancel(c->inner);
}

static carray *imap_cap_chain(mailstream_low *s)
{
    sync__imap_cap *c = s->data;
    return mailstream_low_get_certificate_chain(c->inner);
}

static mailstream_low_driver imap_cap_driver = {
    .mailstream_read = imap_cap_read,
    .mailstream_write = imap_cap_write,
    .mailstream_close = imap_cap_close,
    .mailstream_get_fd = imap_cap_get_fd,
    .mailstream_free = imap_cap_free,
    .mailstream_cancel = imap_cap_cancel,
    .mailstream_get_cancel = imap_cap_get_cancel,
    .mailstream_get_certificate_chain = imap_cap_chain,
};

int sync__imap_cap_install(mailimap *m, sync__imap_cap **out)
{
    mailstream *st = m->imap_stream;
    sync__imap_cap *c = calloc(1, sizeof *c);
    mailstream_low *low = c ? mailstream_low_new(c, &imap_cap_driver) : NULL;
    if (!low) {
        free(c);
        return SH_ENOMEM;
    }
    c->inner = mailstream_get_low(st);
    mailstream_set_low(st, low);
    *out = c;
    return SH_OK;
}
