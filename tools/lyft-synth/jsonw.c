#include "tools/lyft-synth/jsonw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/index_line.h"

static void emit(void *ctx, const char *s, size_t n) { fwrite(s, 1, n, ctx); }

static void check(jw *j, yajl_gen_status st) { j->bad |= st != yajl_gen_status_ok; }

int jw_open(jw *j, const char *dir, const char *table, l3d_err *err)
{
    memset(j, 0, sizeof *j);
    snprintf(j->path, sizeof j->path, "%s/%s.json", dir, table);
    j->fp = fopen(j->path, "wb");
    if (!j->fp)
        return l3d_fail(err, L3D_EIO, "cannot create '%s': %s", j->path, strerror(errno));
    setvbuf(j->fp, NULL, _IOFBF, 1 << 20);
    j->g = yajl_gen_alloc(NULL);
    if (!j->g) {
        fclose(j->fp);
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    }
    yajl_gen_config(j->g, yajl_gen_print_callback, emit, j->fp);
    fputc('[', j->fp);
    return L3D_OK;
}

int jw_close(jw *j, l3d_err *err)
{
    fputs(j->n ? "\n]\n" : "]\n", j->fp);
    int bad = fflush(j->fp) != 0 || ferror(j->fp) || fsync(fileno(j->fp)) != 0;
    int saved = errno;
    bad |= fclose(j->fp) != 0;
    yajl_gen_free(j->g);
    j->fp = NULL;
    j->g = NULL;
    if (j->bad)
        return l3d_fail(err, L3D_EINTERNAL, "%s: JSON generator error", j->path);
    if (bad)
        return l3d_fail(err, L3D_EIO, "cannot write '%s': %s", j->path, strerror(saved));
    return L3D_OK;
}

void jw_abort(jw *j)
{
    if (j->fp)
        fclose(j->fp);
    if (j->g)
        yajl_gen_free(j->g);
    j->fp = NULL;
    j->g = NULL;
}

void jw_begin(jw *j)
{
    fputs(j->n++ ? ",\n" : "\n", j->fp);
    yajl_gen_reset(j->g, NULL);
    check(j, yajl_gen_map_open(j->g));
}

void jw_end(jw *j) { check(j, yajl_gen_map_close(j->g)); }

void jw_key(jw *j, const char *k)
{
    check(j, yajl_gen_string(j->g, (const unsigned char *)k, strlen(k)));
}

void jw_string(jw *j, const char *v)
{
    check(j, yajl_gen_string(j->g, (const unsigned char *)v, strlen(v)));
}

void jw_number(jw *j, double v)
{
    char buf[32];
    l3d_format_double(buf, v);
    check(j, yajl_gen_number(j->g, buf, strlen(buf)));
}

void jw_str(jw *j, const char *k, const char *v)
{
    jw_key(j, k);
    jw_string(j, v);
}

void jw_num(jw *j, const char *k, double v)
{
    jw_key(j, k);
    jw_number(j, v);
}

void jw_int(jw *j, const char *k, long long v)
{
    jw_key(j, k);
    check(j, yajl_gen_integer(j->g, v));
}

void jw_bool(jw *j, const char *k, int v)
{
    jw_key(j, k);
    check(j, yajl_gen_bool(j->g, v));
}

void jw_nums(jw *j, const char *k, const double *v, int n)
{
    jw_key(j, k);
    check(j, yajl_gen_array_open(j->g));
    for (int i = 0; i < n; i++)
        jw_number(j, v[i]);
    check(j, yajl_gen_array_close(j->g));
}

void jw_arr_begin(jw *j, const char *k)
{
    jw_key(j, k);
    check(j, yajl_gen_array_open(j->g));
}

void jw_arr_end(jw *j) { check(j, yajl_gen_array_close(j->g)); }
