#include "formats/json_split.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CHUNK = 1 << 16, CUT_WINDOW = 1 << 20 };

static int oom(l3d_err *err) { return l3d_fail(err, L3D_EINTERNAL, "out of memory"); }

/* Feeds the rest of s to p and finishes the parse. */
static int parse_rest(l3d_jparser *p, l3d_stream *s, unsigned char *buf, l3d_read_fn on_read,
                      void *read_ctx, l3d_err *err)
{
    for (;;) {
        size_t got;
        int rc = l3d_stream_read(s, buf, CHUNK, &got, err);
        if (rc)
            return rc;
        if (got == 0)
            return l3d_jparser_finish(p, err);
        if (on_read)
            on_read(read_ctx, got);
        if ((rc = l3d_jparser_feed(p, buf, got, err)))
            return rc;
    }
}

int l3d_json_parse_stream(l3d_stream *s, const char *display, l3d_record_fn fn, void *ctx,
                          l3d_read_fn on_read, void *read_ctx, l3d_err *err)
{
    unsigned char *buf = malloc(CHUNK);
    l3d_jparser *p = l3d_jparser_new(display, fn, ctx);
    int rc = buf && p ? parse_rest(p, s, buf, on_read, read_ctx, err) : oom(err);
    l3d_jparser_free(p);
    free(buf);
    return rc;
}

/* Offset of a '{' that starts a line (after indentation), in a window from the middle of the
 * file; -1 if there is none. (A raw newline cannot be inside a JSON
 * string, so such a '{' starts an object; that it starts a record of the
 * top-level array is checked by the parse itself.) */
static int64_t find_cut(const char *path, int64_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char *w = malloc(CUT_WINDOW);
    int64_t from = size / 2, cut = -1;
    ssize_t n = w ? pread(fd, w, CUT_WINDOW, (off_t)from) : -1;
    for (ssize_t i = 0; i < n && cut < 0; i++) {
        if (w[i] != '\n')
            continue;
        ssize_t j = i + 1;
        while (j < n && (w[j] == ' ' || w[j] == '\t'))
            j++;
        if (j < n && w[j] == '{')
            cut = from + j;
    }
    free(w);
    close(fd);
    return cut;
}

typedef struct second_part {
    const char *path, *display;
    int64_t from;
    l3d_record_fn fn;
    void *ctx;
    atomic_int cancel;     /* the first part failed or missed the cut: stop */
    int rc;
    size_t bytes;
    l3d_err err;
} second_part;

static void *parse_second(void *arg)
{
    second_part *b = arg;
    unsigned char *buf = malloc(CHUNK);
    FILE *fp = fopen(b->path, "rb");
    l3d_jparser *p = l3d_jparser_new(b->display, b->fn, b->ctx);
    int rc = L3D_EIO;
    if (buf && fp && p && fseeko(fp, (off_t)b->from, SEEK_SET) == 0) {
        /* the part starts with a record: after "[" the parser is where the
         * whole-file parse was after the comma before it */
        rc = l3d_jparser_feed(p, (const unsigned char *)"[", 1, &b->err);
        while (!rc) {
            if (atomic_load(&b->cancel)) {
                rc = L3D_EINTERNAL;
                break;
            }
            size_t got = fread(buf, 1, CHUNK, fp);
            if (got == 0) {
                rc = ferror(fp) ? L3D_EIO : l3d_jparser_finish(p, &b->err);
                break;
            }
            b->bytes += got;
            rc = l3d_jparser_feed(p, buf, got, &b->err);
        }
    }
    b->rc = rc;
    l3d_jparser_free(p);
    if (fp)
        fclose(fp);
    free(buf);
    return NULL;
}

int l3d_json_parse_split(l3d_stream *s, const char *display, int64_t size, l3d_record_fn fn,
                         void *ctx, void *ctx_b, int *split, l3d_read_fn on_read,
                         void *read_ctx, l3d_err *err)
{
    *split = 0;
    const char *path = l3d_stream_path(s);
    int64_t cut = path && size > 0 ? find_cut(path, size) : -1;
    if (cut < 0)
        return l3d_json_parse_stream(s, display, fn, ctx, on_read, read_ctx, err);

    second_part b = {.path = path, .display = display, .from = cut, .fn = fn, .ctx = ctx_b};
    atomic_init(&b.cancel, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, parse_second, &b) != 0)
        return l3d_json_parse_stream(s, display, fn, ctx, on_read, read_ctx, err);

    unsigned char *buf = malloc(CHUNK);
    l3d_jparser *p = l3d_jparser_new(display, fn, ctx);
    int rc = buf && p ? L3D_OK : oom(err);
    int64_t done = 0;
    while (!rc && done < cut) {
        size_t want = cut - done < CHUNK ? (size_t)(cut - done) : CHUNK, got;
        if ((rc = l3d_stream_read(s, buf, want, &got, err)) || got == 0)
            break;   /* a short file: the whole-file parse below finishes it */
        if (on_read)
            on_read(read_ctx, got);
        done += (int64_t)got;
        rc = l3d_jparser_feed(p, buf, got, err);
    }
    int at_cut = !rc && done == cut && l3d_jparser_between_records(p);
    if (!at_cut)
        atomic_store(&b.cancel, 1);
    pthread_join(thread, NULL);
    if (at_cut && b.rc == L3D_OK) {
        *split = 1;
        if (on_read)
            on_read(read_ctx, b.bytes);
    } else if (!rc) {
        rc = parse_rest(p, s, buf, on_read, read_ctx, err);
    }
    l3d_jparser_free(p);
    free(buf);
    return rc;
}
