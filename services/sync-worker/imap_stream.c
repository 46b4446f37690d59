/* imap_stream.c - the stream under each IMAP session that bounds what a
 * server can take from us. It counts the bytes of the server's reply to
 * the last command sent: libetpan reads a literal of whatever size the
 * server announces, so a hostile or broken server could otherwise make it
 * read (and hold) gigabytes; before login the cap is that of a greeting.
 * It holds each reply to a deadline and the session to the run's: the
 * socket's own timeout is per read, so a server sending a byte now and
 * then would hold a thread for ever. It also turns the end of the
 * connection into an error: libetpan 1.9.4 reads the rest of a literal in
 * a loop that takes a read of 0 bytes for "nothing yet", so a server that
 * closed inside a literal would keep a thread spinning. */
#include <stdlib.h>

#include "imap_int.h"
#include "shared/util.h"

void sync__imap_cap_begin(sync__imap_cap *c)
{
    c->used = 0;
    c->deadline_ms = sh_mono_ms() + (int64_t)c->command_s * 1000;
}

static ssize_t imap_cap_read(mailstream_low *s, void *buf, size_t count)
{
    sync__imap_cap *c = s->data;
    if (c->used >= c->limit) {
        c->tripped = true;
        return -1;
    }
    if (count > c->limit - c->used)
        count = c->limit - c->used;
    int64_t end = c->deadline_ms;
    bool run = c->run_end_ms && c->run_end_ms < end;
    if (run)
        end = c->run_end_ms;
    int64_t now = sh_mono_ms();
    if (now >= end) {
        *(run ? &c->run_over : &c->stalled) = true;
        return -1;
    }
    /* Wait no longer than the deadline (rounded up to the socket's
     * seconds) nor the idle timeout. */
    int64_t wait = (end - now + 999) / 1000;
    if (wait > c->idle_s)
        wait = c->idle_s;
    mailstream_low_set_timeout(c->inner, (time_t)(wait < 1 ? 1 : wait));
    sync__imap_watch_arm(&c->watch, c->inner, end);
    ssize_t r = mailstream_low_read(c->inner, buf, count);
    bool cancelled = sync__imap_watch_disarm(&c->watch);
    if (r <= 0) {
        if (r < 0 && (cancelled || sh_mono_ms() >= end))
            *(run ? &c->run_over : &c->stalled) = true;
        return -1; /* 0: the server closed the connection */
    }
    c->used += (size_t)r;
    return r;
}

static ssize_t imap_cap_write(mailstream_low *s, const void *buf, size_t count)
{
    sync__imap_cap *c = s->data;
    sync__imap_cap_begin(c);
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

int sync__imap_cap_install(sync_imap *sess, mailstream *st)
{
    sync__imap_cap *c = calloc(1, sizeof *c);
    mailstream_low *low = c && st ? mailstream_low_new(c, &imap_cap_driver) : NULL;
    if (!low) {
        free(c);
        return SH_ENOMEM;
    }
    *c = sess->limits;
    c->watch = (sync__imap_watch){0};
    c->inner = mailstream_get_low(st);
    sync__imap_cap_begin(c);
    mailstream_set_low(st, low);
    sess->cap = c;
    return SH_OK;
}
