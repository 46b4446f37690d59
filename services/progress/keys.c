/* keys.c - builders of the progress service's Redis keys. */
#include "keys.h"

int prog_key_record(char *buf, size_t len, const char *id)
{
    return sh_key_build(buf, len, SH_KEY_PROGRESS, id, NULL);
}

int prog_key_log(char *buf, size_t len, const char *id)
{
    return sh_key_build(buf, len, SH_KEY_PROGRESS, id, ":log");
}

int prog_key_log_seq(char *buf, size_t len, const char *id)
{
    return sh_key_build(buf, len, SH_KEY_PROGRESS, id, ":logseq");
}

int prog_key_job(char *buf, size_t len, const char *job_id)
{
    return sh_key_build(buf, len, SH_KEY_JOB, job_id, NULL);
}

int prog_key_job_index(char *buf, size_t len, const char *conversation_id)
{
    return sh_key_build(buf, len, SH_KEY_JOB_INDEX, conversation_id, NULL);
}
