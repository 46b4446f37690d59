/* imap_mem.h - an IMAP server's reply given as bytes, parsed by libetpan
 * as a session would parse it from the network (a memory stream under a
 * session), for the sync-worker's decoding tests and its fuzz harness. */
#ifndef TESTS_IMAP_MEM_H
#define TESTS_IMAP_MEM_H

#include <stddef.h>

#include <libetpan/libetpan.h>

/* tf_imap_parse_fetch parses the len bytes of reply (untagged lines ending
 * in the tagged line "1 ..."), and hands the FETCH results to *fetch
 * (caller frees with mailimap_fetch_list_free; may be NULL). Returns 0, or
 * libetpan's error code when the reply does not parse. */
int tf_imap_parse_fetch(const char *reply, size_t len, clist **fetch);
/* tf_imap_parse_reply is tf_imap_parse_fetch that also hands over the
 * extension data (VANISHED, CONDSTORE codes) in *extensions (caller frees
 * with tf_imap_extensions_free; may be NULL) when extensions is not NULL. */
int tf_imap_parse_reply(const char *reply, size_t len, clist **fetch, clist **extensions);
void tf_imap_extensions_free(clist *extensions);

#endif
