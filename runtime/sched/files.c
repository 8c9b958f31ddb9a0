/* Task directories: DATA/jobs/<job>/<task>/{inputs,outputs,work}, created
 * before a task starts and removed with their job. (The usage of a task's
 * last attempt lives in its row: jr_store_task_set_usage.) */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sched/internal.h"

int jr_sched_task_dir(struct jr_sched *s, const char *job, const char *task,
                      const char *sub, char *out, size_t size)
{
    int n;

    if (task)
        n = snprintf(out, size, "%s/jobs/%s/%s%s%s", s->data_dir, job, task,
                     sub ? "/" : "", sub ? sub : "");
    else
        n = snprintf(out, size, "%s/jobs/%s", s->data_dir, job);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* mkdir -p. The deepest missing folder is found by walking up from path
 * (a task's folders have most of their parents already). */
int jr_sched_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    char *slash;

    if (n >= sizeof buf)
        return -1;
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT)
        return -1;
    memcpy(buf, path, n + 1);
    slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return -1;
    *slash = 0;
    if (jr_sched_mkdirs(buf))
        return -1;
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void jr_sched_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
