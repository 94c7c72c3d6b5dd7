/* Helpers shared by the CMocka tests: temp dirs, running tools, real data. */
#ifndef LIDAR3D_TESTS_TESTUTIL_H
#define LIDAR3D_TESTS_TESTUTIL_H

#include <stddef.h>

/* A fresh empty directory under $LIDAR3D_TMP (or /tmp), unique per call;
 * the returned buffer stays valid for the next 63 calls. */
const char *tu_tmpdir(const char *tag);
/* Path of a built tool ($LIDAR3D_BIN/NAME). */
const char *tu_tool(const char *name);
/* ../shared/data/NAME, or NULL after printing "skipped: ... not found". */
const char *tu_shared_data(const char *name);

/* Runs a shell command; captures stdout and stderr (malloc'ed, NUL-ended)
 * and returns the exit status (or -1). Either capture may be NULL. */
int tu_run(const char *cmd, char **out, char **err);

char *tu_read_file(const char *path, size_t *len);
void tu_write_file(const char *path, const char *text);
/* Writes a file of n bytes, contents given. */
void tu_write_bytes(const char *path, const void *data, size_t n);
/* Copies a directory tree (cp -r). */
void tu_copy_tree(const char *from, const char *to);

/* A tiny Lyft dataset whose every number is known (tests/support/testutil.c
 * documents it): 2 scenes, 4 samples, LIDAR_TOP at (1,0,2) yawed 180°, the
 * ego moving 10 m per 0.2 s, one car; each .bin holds the points (1,2,3) and
 * (-4,5,-6). Tables go to DIR/TABLES, bins to DIR/LIDAR, and sample_data
 * names them PREFIX/host-a000_lidar1_K.bin. */
void tu_write_tiny(const char *dir, const char *tables, const char *lidar, const char *prefix);

#endif
