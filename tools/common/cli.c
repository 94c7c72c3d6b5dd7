#include "tools/common/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *l3d_prog = "lidar3d";

void l3d_die(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", l3d_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /* _exit, not exit: library atexit handlers (HDF5's) may crash on the
     * half-closed files an error leaves behind */
    fflush(NULL);
    _exit(code);
}

void l3d_die_err(const l3d_err *err)
{
    l3d_die(err->code ? err->code : L3D_EINTERNAL, "%s", err->msg);
}

void l3d_warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: warning: ", l3d_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double l3d_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void l3d_progress_begin(l3d_progress *p, const char *what, const char *unit, double total)
{
    memset(p, 0, sizeof *p);
    const char *force = getenv("LIDAR3D_PROGRESS");
    p->enabled = force ? strcmp(force, "0") != 0 : isatty(STDERR_FILENO);
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->start_s = l3d_now_s();
}

void l3d_progress_format(char *buf, size_t n, const char *what, const char *unit, double done,
                         double total, double elapsed_s)
{
    if (total > 0 && done > 0) {
        double frac = done / total > 1 ? 1 : done / total;
        double eta = elapsed_s * (1 - frac) / frac;
        int e = (int)(eta + 0.5);
        snprintf(buf, n, "%s: %s %3.0f%% (%.0f/%.0f %s) ETA %d:%02d", l3d_prog, what,
                 100 * frac, done, total, unit, e / 60, e % 60);
    } else {
        snprintf(buf, n, "%s: %s %.0f %s", l3d_prog, what, done, unit);
    }
}

void l3d_progress_update(l3d_progress *p, double done)
{
    if (!p->enabled)
        return;
    double now = l3d_now_s();
    if (p->shown && now - p->last_s < 0.2)
        return;
    char line[256];
    l3d_progress_format(line, sizeof line, p->what, p->unit, done, p->total, now - p->start_s);
    fprintf(stderr, "\r%-78s", line);
    p->last_s = now;
    p->shown = 1;
}

void l3d_progress_end(l3d_progress *p)
{
    if (p->enabled && p->shown)
        fprintf(stderr, "\r%-78s\r", "");
    p->shown = 0;
}
