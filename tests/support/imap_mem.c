/* imap_mem.c - libetpan's reply parser on a memory stream (imap_mem.h). */
#include "imap_mem.h"

#include <stdlib.h>
#include <string.h>

typedef struct mem_stream {
    const char *data;
    size_t len, pos;
} mem_stream;

static ssize_t mem_read(mailstream_low *s, void *buf, size_t count)
{
    mem_stream *m = s->data;
    if (m->pos == m->len)
        return -1; /* the end, as the session's own stream reports it */
    size_t n = m->len - m->pos < count ? m->len - m->pos : count;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

static ssize_t mem_write(mailstream_low *s, const void *buf, size_t count)
{
    return (ssize_t)count;
}

static int mem_close(mailstream_low *s)
{
    return 0;
}

static int mem_fd(mailstream_low *s)
{
    return -1;
}

static void mem_free(mailstream_low *s)
{
    free(s);
}

static void mem_cancel(mailstream_low *s)
{
}

static mailstream_low_driver mem_driver = {
    .mailstream_read = mem_read,
    .mailstream_write = mem_write,
    .mailstream_close = mem_close,
    .mailstream_get_fd = mem_fd,
    .mailstream_free = mem_free,
    .mailstream_cancel = mem_cancel,
};

int tf_imap_parse_fetch(const char *reply, size_t len, clist **fetch)
{
    return tf_imap_parse_reply(reply, len, fetch, NULL);
}

int tf_imap_parse_reply(const char *reply, size_t len, clist **fetch, clist **extensions)
{
    *fetch = NULL;
    if (extensions)
        *extensions = NULL;
    mem_stream ms = {reply, len, 0};
    mailimap *m = mailimap_new(0, NULL);
    if (!m)
        return MAILIMAP_ERROR_MEMORY;
    mailstream_low *low = mailstream_low_new(&ms, &mem_driver);
    m->imap_stream = low ? mailstream_new(low, 8192) : NULL;
    if (!m->imap_stream) {
        if (low)
            mailstream_low_free(low);
        mailimap_free(m);
        return MAILIMAP_ERROR_MEMORY;
    }
    m->imap_tag = 1;
    struct mailimap_response *resp = NULL;
    int r = mailimap_read_line(m) ? mailimap_parse_response(m, &resp) : MAILIMAP_ERROR_STREAM;
    if (r == MAILIMAP_NO_ERROR || r == MAILIMAP_ERROR_PROTOCOL) {
        if (m->imap_response_info) {
            *fetch = m->imap_response_info->rsp_fetch_list;
            m->imap_response_info->rsp_fetch_list = NULL;
            if (extensions) {
                *extensions = m->imap_response_info->rsp_extension_list;
                m->imap_response_info->rsp_extension_list = NULL;
            }
        }
        r = MAILIMAP_NO_ERROR;
    }
    if (resp)
        mailimap_response_free(resp);
    mailimap_free(m);
    return r;
}

void tf_imap_extensions_free(clist *extensions)
{
    if (!extensions)
        return;
    for (clistiter *it = clist_begin(extensions); it; it = clist_next(it))
        mailimap_extension_data_free(clist_content(it));
    clist_free(extensions);
}
