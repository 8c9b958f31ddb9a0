/* The command line's way into the embedded script layer (implemented in
 * runtime/lua/start.c), so that main.c knows no scripting engine. */
#ifndef JR_SCRIPT_H
#define JR_SCRIPT_H

#include "loop.h"

/* Create the script state on loop, hand it argv (the `jobrt CMD ...`
 * commands), run the loop until it has nothing left, close what is left
 * while scripts can still run close callbacks, then close the state.
 * Returns the process exit code; loop->uv is left for the caller to close. */
int jr_script_main(struct jr_loop *loop, int argc, char **argv);

#endif
