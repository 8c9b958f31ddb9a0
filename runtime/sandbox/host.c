/* What a sandbox helper learns of the host before its first task: the
 * seccomp filter (compiled by libseccomp), where the cgroup hierarchies are
 * mounted, which controllers cgroup2 offers, and the last capability. The
 * sandbox server learns it once and every helper it forks inherits it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/internal.h"

int jr_sb_host_init(struct jr_sb_host *h, struct jr_sb_err *e)
{
    char buf[16];

    memset(h, 0, sizeof(*h));
    h->cap_last = 63;
    if (jr_sb_read_file("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) > 0)
        h->cap_last = atoi(buf);
    /* Without mountinfo there are no cgroups to use; a limit then fails at
     * its own stage. */
    if (jr_sb_cg_load_mounts(&h->mounts) == 0 && h->mounts.path[JR_CG_V2][0]) {
        char path[300];
        snprintf(path, sizeof(path), "%s/cgroup.controllers", h->mounts.path[JR_CG_V2]);
        jr_sb_read_file(path, h->v2_controllers, sizeof(h->v2_controllers));
    }
    return jr_sb_seccomp_build(&h->filter, e);
}

void jr_sb_host_free(struct jr_sb_host *h)
{
    free(h->filter.filter);
    h->filter.filter = NULL;
}
