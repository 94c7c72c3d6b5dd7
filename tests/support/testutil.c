#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void make_dir(char *p, size_t n, const char *tag)
{
    static int counter;
    const char *base = getenv("LIDAR3D_TMP");
    if (!base)
        base = "/tmp";
    mkdir(base, 0777);
    snprintf(p, n, "%s/%s-%ld-%d", base, tag, (long)getpid(), counter++);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p, p);
    if (system(cmd) != 0)
        abort();
}

/* A test holds at most a few directories at once: 64 live ones suffice. */
const char *tu_tmpdir(const char *tag)
{
    static char buf[64][4096];
    static int k;
    char *p = buf[k++ % 64];
    make_dir(p, 4096, tag);
    return p;
}

const char *tu_tool(const char *name)
{
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ % 8];
    const char *bin = getenv("LIDAR3D_BIN");
    snprintf(p, 4096, "%s/%s", bin ? bin : "bin", name);
    return p;
}

const char *tu_shared_data(const char *name)
{
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ % 8];
    const char *shared = getenv("LIDAR3D_SHARED");
    snprintf(p, 4096, "%s/data/%s", shared ? shared : "../shared", name);
    struct stat st;
    if (stat(p, &st) != 0) {
        printf("skipped: ../shared/data/%s not found\n", name);
        return NULL;
    }
    return p;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp);
        free(b);
        return NULL;
    }
    b[n] = 0;
    fclose(fp);
    if (len)
        *len = (size_t)n;
    return b;
}

void tu_write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n)
        abort();
    fclose(fp);
}

void tu_write_file(const char *path, const char *text) { tu_write_bytes(path, text, strlen(text)); }

int tu_run(const char *cmd, char **out, char **err)
{
    char dir[4096];
    make_dir(dir, sizeof dir, "run");
    char full[16384];
    snprintf(full, sizeof full, "( %s ) >'%s/out' 2>'%s/err'", cmd, dir, dir);
    int st = system(full);
    char p[4200];
    if (out) {
        snprintf(p, sizeof p, "%s/out", dir);
        *out = tu_read_file(p, NULL);
    }
    if (err) {
        snprintf(p, sizeof p, "%s/err", dir);
        *err = tu_read_file(p, NULL);
    }
    snprintf(full, sizeof full, "rm -rf '%s'", dir);
    if (system(full) != 0)
        abort();
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tu_copy_tree(const char *from, const char *to)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && chmod -R u+w '%s'", from, to, to);
    if (system(cmd) != 0)
        abort();
}
