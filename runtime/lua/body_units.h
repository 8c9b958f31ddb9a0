/* jobrt.units in C for the native submit's one pass (core_body.c): cpu,
 * sizes and durations read from a body's node as lua/jobrt/units.lua reads
 * them, for the texts it reads without error; -1 for anything else (the
 * decoded path then says what is wrong). Not included outside runtime/lua/. */
#ifndef JR_LUA_BODY_UNITS_H
#define JR_LUA_BODY_UNITS_H

#include <stdint.h>

#include "lua/body_doc.h"

/* Millicores from cores (a number or "1.5") or "500m". */
int jr_body_cpu(const struct jr_doc_node *x, int64_t *out);
/* Bytes from a whole number or "64MiB", "1.5G", "512". */
int jr_body_bytes(const struct jr_doc_node *x, int64_t *out);
/* Seconds from a number or "30s", "1h30m", "250ms" (each unit once). */
int jr_body_duration(const struct jr_doc_node *x, double *out);

#endif
