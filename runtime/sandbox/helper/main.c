/* build/jobrt-sandbox: the sandbox helper alone, linked against libc (and a
 * static libseccomp) instead of the daemon's 15 shared libraries. It takes
 * the same command line as `jobrt sandbox` (argv[1] is "sandbox"); the
 * daemon spawns it per task attempt when it sits next to its binary. */
#include <stdio.h>
#include <string.h>

#include "sandbox/sandbox.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "sandbox") == 0)
        return jr_sandbox_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "sandbox-check") == 0)
        return jr_sandbox_check_main(argc, argv);
    fprintf(stderr, "usage: jobrt-sandbox sandbox [options] -- command [args...]\n"
                    "       (the same options as `jobrt sandbox --help`)\n");
    return 2;
}
