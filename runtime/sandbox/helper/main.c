/* build/jobrt-sandbox: the sandbox helper alone, linked against libc (and a
 * static libseccomp) instead of the daemon's 15 shared libraries. It takes
 * the same command lines as `jobrt sandbox`, `sandbox-check` and
 * `sandbox-server`; the daemon runs it as its sandbox server when it sits
 * next to its binary. */
#include <stdio.h>
#include <string.h>

#include "sandbox/sandbox.h"
#include "sandbox/server.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "sandbox") == 0)
        return jr_sandbox_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "sandbox-check") == 0)
        return jr_sandbox_check_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "sandbox-server") == 0)
        return jr_sandbox_server_main(argc, argv);
    fprintf(stderr, "usage: jobrt-sandbox sandbox [options] -- command [args...]\n"
                    "       (the same options as `jobrt sandbox --help`)\n");
    return 2;
}
