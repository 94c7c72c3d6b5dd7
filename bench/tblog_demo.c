/* Writes a TensorBoard event file from scalars given on stdin, one a line:
 *   STEP<TAB>TAG<TAB>VALUE        (VALUE as strtof reads it: 0.25, -1e-7, nan, inf)
 * and prints the event file's path. tests/ref/tensorboard_check.py feeds it
 * known scalars and reads the file back with the official tensorboard package.
 *
 *   build/bench/tblog_demo DIR < scalars.tsv
 *   build/bench/tblog_demo --speed DIR     time 1e6 scalars (one flush at the end) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer/tblog.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int die(const l3d_err *err)
{
    fprintf(stderr, "tblog_demo: error: %s\n", err->msg);
    return err->code ? err->code : 1;
}

int main(int argc, char **argv)
{
    int speed = argc == 3 && strcmp(argv[1], "--speed") == 0;
    if (argc != 2 && !speed) {
        fprintf(stderr, "usage: tblog_demo DIR < scalars.tsv  |  tblog_demo --speed DIR\n");
        return 2;
    }
    l3d_tblog t;
    l3d_err err = {0};
    if (l3d_tblog_open(&t, argv[argc - 1], &err))
        return die(&err);
    if (speed) {
        enum { N = 1000000 };
        double t0 = now_s();
        for (int64_t i = 0; i < N; i++)
            if (l3d_tblog_scalar(&t, i, "loss/total", 1.0f / (float)(i + 1), &err))
                return die(&err);
        if (l3d_tblog_flush(&t, &err))
            return die(&err);
        double dt = now_s() - t0;
        printf("%s\n%d scalars in %.3f s: %.2f M scalars/s\n", t.path, N, dt, N / dt / 1e6);
        l3d_tblog_close(&t);
        return 0;
    }
    char line[8192];
    long lineno = 0;
    while (fgets(line, sizeof line, stdin)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2) {
            fprintf(stderr, "tblog_demo: error: stdin line %ld: want STEP<TAB>TAG<TAB>VALUE\n",
                    lineno);
            return 12;
        }
        *tab1 = *tab2 = '\0';
        char *end1, *end2;
        long long step = strtoll(line, &end1, 10);
        float value = strtof(tab2 + 1, &end2);
        if (*end1 || *end2 || end1 == line || end2 == tab2 + 1) {
            fprintf(stderr, "tblog_demo: error: stdin line %ld: bad step or value\n", lineno);
            return 12;
        }
        if (l3d_tblog_scalar(&t, step, tab1 + 1, value, &err))
            return die(&err);
    }
    if (l3d_tblog_flush(&t, &err))
        return die(&err);
    printf("%s\n", t.path);
    l3d_tblog_close(&t);
    return 0;
}
