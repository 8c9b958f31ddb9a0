/* build/jobrt-sandbox: the sandbox helper alone, linked against libc (and a
 * static libseccomp) instead of the daemon's 15 shared libraries. It takes
 * the same command lines as `jobrt sandbox`, `sandbox-check` and
 * `sandbox-server`; the daemon runs it as its sandbox server when it sits
 * next to its binary. */
#include <stdio.h>

#include "sandbox/sandbox.h"

int main(int argc, char **argv)
{
    int status;

    if (jr_sandbox_command(argc, argv, &status))
        return status;
    fprintf(stderr, "usage: jobrt-sandbox sandbox [options] -- command [args...]\n"
                    "       (the same options as `jobrt sandbox --help`)\n");
    return 2;
}
