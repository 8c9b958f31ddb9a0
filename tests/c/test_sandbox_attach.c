/* The sandbox executor's attach with what the store may hand it: no record
 * (an attempt of a jobrt without them: NOT_FOUND, the scheduler's
 * fallback), a record of another attempt (NOT_FOUND), a record of a newer
 * format (its helper is stopped, not guessed at, and the attempt ends lost
 * saying why), and a helper that is gone (lost), each reported from the
 * loop, never inside attach. The helper here is a plain process in a
 * session of its own. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "exec/exec.h"
#include "exec/record.h"
#include "unit.h"

struct seen {
    int done;
    struct jr_exec_result r;
};

static void on_log(void *arg, int stream, const char *line, size_t len)
{
    (void)arg;
    (void)stream;
    (void)line;
    (void)len;
}

static void on_done(void *arg, const struct jr_exec_result *r)
{
    struct seen *s = arg;

    s->done++;
    s->r = *r;
}

static const struct jr_exec_cbs cbs = { .log = on_log, .done = on_done };

/* A process that stands for a helper: its own session, sleeping. */
static pid_t fake_helper(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        setsid();
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    usleep(20000); /* it has exec'd: its start time is settled */
    return pid;
}

static void spin(uv_loop_t *loop, const int *flag)
{
    for (int i = 0; i < 500 && !*flag; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
}

TEST(records_it_cannot_use)
{
    uv_loop_t loop;
    struct jr_executor ex;
    struct jr_exec_sandbox_opts o;
    struct jr_exec_attach a;
    struct jr_exec_proc *p = NULL;
    struct jr_err e = { 0, "" };
    struct seen s;
    const char *images[] = { NULL }, *paths[] = { NULL };
    char text[JR_EXEC_RECORD_MAX], dir[] = "/tmp/jobrt-test-attach-XXXXXX";
    struct jr_exec_record rec;
    pid_t helper = fake_helper();
    int status = 0;

    if (!mkdtemp(dir))
        return;
    uv_loop_init(&loop);
    memset(&o, 0, sizeof o);
    o.exe = "/bin/true";
    o.images = images;
    o.host_paths = paths;
    CHECK_INT(jr_exec_sandbox_open(&loop, &o, &ex, &e), 0);
    memset(&a, 0, sizeof a);
    a.job_id = "j";
    a.task = "t";
    a.task_dir = dir;
    a.attempt = 1;
    a.pid = helper;
    a.pid_start = jr_exec_pid_start(helper);
    memset(&s, 0, sizeof s);

    /* none: the attempt of a jobrt that kept no records */
    CHECK_INT(ex.ops->attach(ex.self, &a, &cbs, &s, &p, &e), JR_E_NOT_FOUND);
    CHECK(p == NULL);
    /* another attempt's */
    memset(&rec, 0, sizeof rec);
    rec.attempt = 2;
    rec.helper_pid = helper;
    rec.helper_start = a.pid_start;
    snprintf(rec.spool, sizeof rec.spool, "x.log");
    CHECK(jr_exec_record_format(&rec, text, sizeof text) > 0);
    a.record = text;
    CHECK_INT(ex.ops->attach(ex.self, &a, &cbs, &s, &p, &e), JR_E_NOT_FOUND);
    CHECK_INT(kill(helper, 0), 0); /* left alone: the caller decides */

    /* a newer format: stopped, and lost saying why, from the loop */
    a.record = "jobrt-attempt 7\nattempt 1\nhelper_pid 1\nhelper_start 1\nsomething new\n";
    CHECK_INT(ex.ops->attach(ex.self, &a, &cbs, &s, &p, &e), 0);
    CHECK(p != NULL);
    CHECK_INT(s.done, 0);
    CHECK_INT(waitpid(helper, &status, 0), helper);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    spin(&loop, &s.done);
    CHECK_INT(s.done, 1);
    CHECK_INT(s.r.outcome, JR_OUT_LOST);
    CHECK(strstr(s.r.message, "format 7") != NULL);

    /* a helper that is gone (its pid no longer that process): lost */
    memset(&s, 0, sizeof s);
    rec.attempt = 1;
    CHECK(jr_exec_record_format(&rec, text, sizeof text) > 0);
    a.record = text;
    CHECK_INT(ex.ops->attach(ex.self, &a, &cbs, &s, &p, &e), 0);
    spin(&loop, &s.done);
    CHECK_INT(s.done, 1);
    CHECK_INT(s.r.outcome, JR_OUT_LOST);
    CHECK(strstr(s.r.message, "was gone without an outcome") != NULL);

    ex.ops->close(ex.self);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_INT(uv_loop_close(&loop), 0);
    rmdir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(records_it_cannot_use);
    return UNIT_DONE();
}
