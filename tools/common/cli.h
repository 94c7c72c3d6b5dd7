/* What every tool shares: fatal errors, counted warnings, progress with ETA. */
#ifndef LIDAR3D_TOOLS_CLI_H
#define LIDAR3D_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>
#include "formats/error.h"

/* Set once by main(): prefixes every message ("lyft-index: ..."). */
extern const char *l3d_prog;

/* Prints "PROG: error: MESSAGE" and exits with code. */
void l3d_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* Same for an l3d_err filled by the library. */
void l3d_die_err(const l3d_err *err) __attribute__((noreturn));
/* Prints "PROG: warning: MESSAGE". */
void l3d_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress on stderr, only when stderr is a terminal (or LIDAR3D_PROGRESS=1).
 * At most five updates a second; l3d_progress_end clears the line. */
typedef struct l3d_progress {
    const char *what;
    const char *unit;    /* "MB", "samples", ... */
    double total;        /* in units; 0 = unknown */
    double start_s, last_s;
    int enabled, shown;
} l3d_progress;

void l3d_progress_begin(l3d_progress *p, const char *what, const char *unit, double total);
void l3d_progress_update(l3d_progress *p, double done);
void l3d_progress_end(l3d_progress *p);
/* Formats one progress line; exposed for tests. */
void l3d_progress_format(char *buf, size_t n, const char *what, const char *unit, double done,
                         double total, double elapsed_s);

double l3d_now_s(void);

#endif
