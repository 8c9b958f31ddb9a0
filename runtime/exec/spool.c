/* Reading an attempt's output spool into log lines (see spool.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/lines.h"
#include "exec/spool.h"
#include "sandbox/sandbox.h"

_Static_assert(JR_SB_LINE_MAX == JR_EXEC_LINE_MAX,
               "the helper and the daemon cut lines alike");

/* A record: its tag, at most a line, its newline. */
#define BUF_SIZE (JR_EXEC_LINE_MAX + 2)

void jr_exec_spool_init(struct jr_exec_spool *sp, int64_t offset)
{
    memset(sp, 0, sizeof *sp);
    sp->fd = -1;
    sp->offset = offset;
}

/* Passes on the whole records in buf; keeps the rest. After an outcome
 * record nothing follows: what was read stays unconsumed. */
static void pass_records(struct jr_exec_spool *sp, int final, const struct jr_exec_cbs *cbs,
                         void *arg)
{
    size_t start = 0;

    while (start < sp->len && !sp->result) {
        char *nl = memchr(sp->buf + start, '\n', sp->len - start);
        size_t end = nl ? (size_t)(nl - sp->buf) : sp->len;
        /* No newline in a full buffer is not a record the helper writes:
         * pass it on as it is rather than stall. */
        if (!nl && !final && !(start == 0 && sp->len == BUF_SIZE))
            break;
        if (sp->buf[start] == 'R') {
            sp->result = malloc(end - start + 1);
            if (sp->result) {
                memcpy(sp->result, sp->buf + start + 1, end - start - 1);
                memcpy(sp->result + (end - start - 1), "\n", 2);
            }
            break; /* the offset stays before it */
        }
        cbs->log(arg, sp->buf[start] == '1' ? 1 : 2, sp->buf + start + 1,
                 end > start ? end - start - 1 : 0);
        end += nl != NULL;
        sp->offset += (int64_t)(end - start);
        start = end;
    }
    memmove(sp->buf, sp->buf + start, sp->len - start);
    sp->len -= start;
}

int jr_exec_spool_read(struct jr_exec_spool *sp, const char *path, int final,
                       const struct jr_exec_cbs *cbs, void *arg)
{
    int64_t before = sp->offset;
    ssize_t n;

    if (sp->fd < 0) {
        sp->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (sp->fd < 0)
            return errno == ENOENT ? 0 : -1;
    }
    if (!sp->buf && !(sp->buf = malloc(BUF_SIZE)))
        return -1;
    while (!sp->result) {
        n = pread(sp->fd, sp->buf + sp->len, BUF_SIZE - sp->len,
                  (off_t)(sp->offset + (int64_t)sp->len));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        sp->len += (size_t)n;
        pass_records(sp, n == 0 && final, cbs, arg);
        if (n == 0)
            break;
    }
    if (sp->offset != before && cbs->progress)
        cbs->progress(arg, sp->offset);
    return 0;
}

void jr_exec_spool_close(struct jr_exec_spool *sp)
{
    if (sp->fd >= 0)
        close(sp->fd);
    sp->fd = -1;
    free(sp->buf);
    sp->buf = NULL;
    sp->len = 0;
    free(sp->result);
    sp->result = NULL;
}
