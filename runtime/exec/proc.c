/* Process facts read from /proc: start times (to tell a pid from a reused
 * one) and whether a process group still has live members. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"

/* Fields of /proc/PID/stat after the command name: state, ppid, pgrp, ...,
 * starttime is field 22 overall. */
static int read_stat(long pid, char *state, long *pgrp, int64_t *start)
{
    char path[64], buf[1024], *p;
    FILE *f;
    size_t n;
    long long v;
    int field;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2;
    *state = *p;
    for (field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
        if (field == 4 && p)
            *pgrp = strtol(p, NULL, 10);
    }
    if (!p || sscanf(p, "%lld", &v) != 1)
        return -1;
    *start = v;
    return 0;
}

int64_t jr_exec_pid_start(int64_t pid)
{
    char state;
    long pgrp = 0;
    int64_t start = 0;

    if (pid <= 0 || read_stat((long)pid, &state, &pgrp, &start))
        return 0;
    return start;
}

static int group_alive(long pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    char state;
    long pgrp;
    int64_t start;
    int alive = 0;

    if (!d)
        return 0;
    while (!alive && (de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        pgrp = 0;
        if (read_stat(strtol(de->d_name, NULL, 10), &state, &pgrp, &start) == 0 &&
            pgrp == pgid && state != 'Z' && state != 'X')
            alive = 1;
    }
    closedir(d);
    return alive;
}

int jr_exec_kill_stale(int64_t pid, int64_t pid_start)
{
    struct timespec ts = { 0, 2 * 1000 * 1000 };
    int i;
    int64_t now;

    if (pid <= 1)
        return 0;
    now = jr_exec_pid_start(pid);
    /* A pid number is not reused while a group of that number exists, so a
     * different process at pid means the old group is empty. If nothing is
     * at pid, members of the old group may still run. */
    if (now && now != pid_start)
        return 0;
    if (!now && !group_alive((long)pid))
        return 0;
    kill(-(pid_t)pid, SIGKILL);
    /* Start-up only: wait until the old tree is really gone, so that the
     * retry never overlaps it. Bounded to ~5 s. */
    for (i = 0; i < 2500 && group_alive((long)pid); i++)
        nanosleep(&ts, NULL);
    return 1;
}
