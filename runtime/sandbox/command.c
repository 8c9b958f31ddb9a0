/* Which sandbox command argv names (`sandbox`, `sandbox-check`,
 * `sandbox-server`), run in place: shared by the daemon's main() and the
 * slim helper's, so both take the same command lines. */
#include <string.h>

#include "sandbox/sandbox.h"
#include "sandbox/server.h"

int jr_sandbox_command(int argc, char **argv, int *status)
{
    if (argc < 2)
        return 0;
    if (strcmp(argv[1], "sandbox") == 0)
        *status = jr_sandbox_main(argc, argv);
    else if (strcmp(argv[1], "sandbox-check") == 0)
        *status = jr_sandbox_check_main(argc, argv);
    else if (strcmp(argv[1], "sandbox-server") == 0)
        *status = jr_sandbox_server_main(argc, argv);
    else
        return 0;
    return 1;
}
