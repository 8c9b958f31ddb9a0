/* Unit tests of what a task that outlives its daemon leaves behind
 * (runtime/exec/record.h): the attempt record formatted and parsed back,
 * an older reader's rules (unknown keys ignored, a newer format refused,
 * the required keys), and the daemon's spool reader: whole records become
 * lines with the offset they reach, a partial one waits for the rest, a
 * replay from a kept offset passes on only what came after it, and an
 * outcome record is kept, the offset staying before it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/lines.h"
#include "exec/record.h"
#include "exec/spool.h"
#include "unit.h"

static char dir[256];

TEST(record_roundtrip)
{
    struct jr_exec_record r, back;
    struct jr_err e = { 0, "" };
    char text[JR_EXEC_RECORD_MAX];

    memset(&r, 0, sizeof r);
    snprintf(r.job, sizeof r.job, "01a2-job");
    snprintf(r.task, sizeof r.task, "train");
    r.attempt = 3;
    r.helper_pid = 4242;
    r.helper_start = 987654;
    r.started_ms = 1700000000123;
    r.log_cap = 1 << 20;
    snprintf(r.control, sizeof r.control, "jobrt-00ff00ff00ff00ff");
    snprintf(r.spool, sizeof r.spool, "jobrt-00ff00ff00ff00ff.log");
    CHECK(jr_exec_record_format(&r, text, sizeof text) > 0);
    CHECK(strncmp(text, "jobrt-attempt 1\n", 16) == 0);
    CHECK_INT(jr_exec_record_parse(text, &back, &e), 0);
    CHECK_INT(back.format, JR_EXEC_RECORD_FORMAT);
    CHECK_STR(back.job, "01a2-job");
    CHECK_STR(back.task, "train");
    CHECK_INT(back.attempt, 3);
    CHECK_INT(back.helper_pid, 4242);
    CHECK_INT(back.helper_start, 987654);
    CHECK_INT(back.started_ms, 1700000000123);
    CHECK_INT(back.log_cap, 1 << 20);
    CHECK_STR(back.control, "jobrt-00ff00ff00ff00ff");
    CHECK_STR(back.spool, "jobrt-00ff00ff00ff00ff.log");
    CHECK_INT(jr_exec_record_format(&r, text, 40), -1); /* too small */
}

TEST(record_reader_rules)
{
    struct jr_exec_record r;
    struct jr_err e = { 0, "" };

    /* a key a later jobrt added (same format) is ignored */
    CHECK_INT(jr_exec_record_parse("jobrt-attempt 1\nattempt 2\nhelper_pid 77\n"
                                   "helper_start 5\ncgroup t-x\nspool s.log\n", &r, &e), 0);
    CHECK_INT(r.attempt, 2);
    CHECK_STR(r.spool, "s.log");
    CHECK_STR(r.control, "");
    /* a newer format is not guessed at */
    CHECK_INT(jr_exec_record_parse("jobrt-attempt 9\nattempt 1\nhelper_pid 77\n"
                                   "helper_start 5\n", &r, &e), JR_E_INVALID);
    CHECK_INT(r.format, 9);
    CHECK(strstr(e.msg, "format 9") != NULL);
    /* what reattaching needs */
    CHECK_INT(jr_exec_record_parse("jobrt-attempt 1\nattempt 1\nhelper_start 5\n", &r, &e),
              JR_E_INVALID);
    CHECK(strstr(e.msg, "helper_pid") != NULL);
    CHECK_INT(jr_exec_record_parse("jobrt-attempt 1\nattempt 1\nhelper_pid 9\n", &r, &e),
              JR_E_INVALID);
    CHECK(strstr(e.msg, "helper_start") != NULL);
    CHECK_INT(jr_exec_record_parse("something else\n", &r, &e), JR_E_INVALID);
    CHECK_INT(jr_exec_record_parse("", &r, &e), JR_E_INVALID);
    /* the spool stays inside the task's folder; socket names have no spaces */
    CHECK_INT(jr_exec_record_parse("jobrt-attempt 1\nattempt 1\nhelper_pid 9\n"
                                   "helper_start 5\nspool ../x\n", &r, &e), JR_E_INVALID);
    CHECK_INT(jr_exec_record_parse("jobrt-attempt 1\nattempt 1\nhelper_pid 9\n"
                                   "helper_start 5\ncontrol a b\n", &r, &e), JR_E_INVALID);
    CHECK_INT(jr_exec_record_parse("jobrt-attempt 1\nattempt x\nhelper_pid 9\n"
                                   "helper_start 5\n", &r, &e), JR_E_INVALID);
}

struct seen {
    char text[4096];             /* short lines as "stream:text|" */
    size_t lens[8];              /* every line's length */
    int nlines;
    int64_t offset;
    int progress;
};

static void on_log(void *arg, int stream, const char *line, size_t len)
{
    struct seen *s = arg;
    size_t n = strlen(s->text);

    if (s->nlines < 8)
        s->lens[s->nlines] = len;
    s->nlines++;
    if (len < 100)
        snprintf(s->text + n, sizeof s->text - n, "%d:%.*s|", stream, (int)len, line);
}

static void on_progress(void *arg, int64_t offset)
{
    struct seen *s = arg;

    s->offset = offset;
    s->progress++;
}

static const struct jr_exec_cbs cbs = { .log = on_log, .progress = on_progress };

static void append(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);

    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        UNIT_FAIL("append to %s failed", path);
    if (fd >= 0)
        close(fd);
}

TEST(spool_lines_and_offsets)
{
    struct jr_exec_spool sp;
    struct seen s;
    char path[300];

    memset(&s, 0, sizeof s);
    snprintf(path, sizeof path, "%s/spool.log", dir);
    jr_exec_spool_init(&sp, 0);
    /* not there yet: nothing, and no error */
    CHECK_INT(jr_exec_spool_read(&sp, path, 0, &cbs, &s), 0);
    CHECK_STR(s.text, "");
    CHECK_INT(s.progress, 0);
    append(path, "1hello\n2oops\n1");
    CHECK_INT(jr_exec_spool_read(&sp, path, 0, &cbs, &s), 0);
    CHECK_STR(s.text, "1:hello|2:oops|");
    CHECK_INT(s.offset, 13);
    CHECK_INT(s.progress, 1);
    /* the partial record waits for its newline */
    append(path, "par");
    CHECK_INT(jr_exec_spool_read(&sp, path, 0, &cbs, &s), 0);
    CHECK_INT(s.progress, 1);
    append(path, "tial\n1\n");
    CHECK_INT(jr_exec_spool_read(&sp, path, 0, &cbs, &s), 0);
    CHECK_STR(s.text, "1:hello|2:oops|1:partial|1:|");
    CHECK_INT(s.offset, 13 + 9 + 2);
    /* the writer's end: a last partial record is passed on */
    append(path, "2cut");
    CHECK_INT(jr_exec_spool_read(&sp, path, 1, &cbs, &s), 0);
    CHECK_STR(s.text, "1:hello|2:oops|1:partial|1:|2:cut|");
    CHECK_INT(s.offset, 28);
    CHECK(sp.result == NULL);
    jr_exec_spool_close(&sp);
    /* a daemon that kept offset 13 replays the rest only */
    memset(&s, 0, sizeof s);
    jr_exec_spool_init(&sp, 13);
    CHECK_INT(jr_exec_spool_read(&sp, path, 1, &cbs, &s), 0);
    CHECK_STR(s.text, "1:partial|1:|2:cut|");
    CHECK_INT(s.offset, 28);
    jr_exec_spool_close(&sp);
}

TEST(spool_outcome_record)
{
    struct jr_exec_spool sp;
    struct seen s;
    char path[300];

    memset(&s, 0, sizeof s);
    snprintf(path, sizeof path, "%s/with-result.log", dir);
    append(path, "1a\nR{\"outcome\":\"exited\",\"exit_code\":0}\n");
    jr_exec_spool_init(&sp, 0);
    CHECK_INT(jr_exec_spool_read(&sp, path, 0, &cbs, &s), 0);
    CHECK_STR(s.text, "1:a|");
    CHECK_STR(sp.result, "{\"outcome\":\"exited\",\"exit_code\":0}\n");
    CHECK_INT(s.offset, 3); /* it stays before the outcome: a replay finds it */
    jr_exec_spool_close(&sp);
    memset(&s, 0, sizeof s);
    jr_exec_spool_init(&sp, 3);
    CHECK_INT(jr_exec_spool_read(&sp, path, 1, &cbs, &s), 0);
    CHECK_STR(s.text, "");
    CHECK(sp.result && strstr(sp.result, "exited") != NULL);
    CHECK_INT(s.progress, 0);
    jr_exec_spool_close(&sp);
}

TEST(spool_long_lines)
{
    struct jr_exec_spool sp;
    struct seen s;
    char path[300], *big = malloc(JR_EXEC_LINE_MAX + 3);

    if (!big)
        return;
    memset(&s, 0, sizeof s);
    snprintf(path, sizeof path, "%s/long", dir);
    /* the longest record the helper writes, then a short one */
    big[0] = '1';
    memset(big + 1, 'x', JR_EXEC_LINE_MAX);
    big[JR_EXEC_LINE_MAX + 1] = '\n';
    big[JR_EXEC_LINE_MAX + 2] = 0;
    append(path, big);
    append(path, "2end\n");
    jr_exec_spool_init(&sp, 0);
    CHECK_INT(jr_exec_spool_read(&sp, path, 0, &cbs, &s), 0);
    CHECK_INT(s.offset, JR_EXEC_LINE_MAX + 2 + 5);
    CHECK_INT(s.nlines, 2);
    CHECK_INT(s.lens[0], JR_EXEC_LINE_MAX);
    CHECK_STR(s.text, "2:end|");
    jr_exec_spool_close(&sp);
    free(big);
}

int main(void)
{
    char cmd[300];

    snprintf(dir, sizeof dir, "/tmp/jobrt-test-record-%d", (int)getpid());
    mkdir(dir, 0700);
    RUN(record_roundtrip);
    RUN(record_reader_rules);
    RUN(spool_lines_and_offsets);
    RUN(spool_long_lines);
    RUN(spool_outcome_record);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return UNIT_DONE();
}
