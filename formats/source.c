#include "formats/source.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/strmap.h"

typedef struct lidar_member {
    char *member;       /* full member name */
    int input;          /* index of the archive */
    int64_t size;
    int64_t nonfinite;
} lidar_member;

typedef struct input {
    char path[PATH_MAX];     /* absolute */
    int is_dir;
    char tables[PATH_MAX];   /* folder: absolute table folder ("" if none) */
    char root[PATH_MAX];     /* folder: dataset root for LiDAR files */
    int root_fd;             /* root opened O_PATH (-1 if that failed): LiDAR files are
                                stat'ed relative to it, which walks two path components
                                instead of the whole path */
} input;

/* Answers of l3d_source_find_lidar come in blocks that never move. */
#define LOC_BLOCK 1024
/* Room for a LiDAR path relative to its root while it is looked up (an
 * index line holds no longer one: L3D_PATH_MAX). */
#define REL_MAX 1024

struct l3d_source {
    input *in;
    int n;
    l3d_strmap bins;         /* archive .bin base name -> lidar_member index + 1 */
    l3d_strmap found;        /* sample_data.filename -> resolved + 1: each file is looked up
                                once though up to 11 samples name it */
    l3d_strmap dirs;         /* folder -> 1 absent, 2 present: a file in an absent folder
                                needs no stat of its own (missing LiDAR folders cost
                                four failed stats per file) */
    pthread_mutex_t lidar_mu; /* l3d_source_find_lidar is called from several threads:
                                 this guards found, dirs and locs, and is held only
                                 around their look-ups and updates, never a syscall */
    l3d_lidar_loc **loc_blocks; /* answers, LOC_BLOCK to a block so that they never move */
    size_t n_locs, n_loc_blocks;
    lidar_member *members;
    size_t n_members, cap_members;
};

struct l3d_stream {
    FILE *fp;                 /* folder file */
    struct archive *ar;       /* archive member */
    const char *display;
};

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p, int64_t *size)
{
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if (size)
        *size = (int64_t)st.st_size;
    return 1;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* A folder holding any of these is a table folder. */
static const char *const marker_tables[] = {"sample", "sample_data", "scene", "ego_pose", NULL};

/* Finds the table folder of a dataset folder (see source.h). */
static int find_table_dir(input *in, l3d_err *err)
{
    static const char *cands[] = {
        ".", "train_data", "test_data", "v1.01-train/v1.01-train", "v1.01-test/v1.01-test",
        "v1.01-train", "v1.01-test", "data",
    };
    char found[2][PATH_MAX];
    int n = 0;
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        char p[PATH_MAX + 64];
        int has = 0;
        for (const char *const *t = marker_tables; *t && !has; t++) {
            snprintf(p, sizeof p, "%s/%s/%s.json", in->path, cands[i], *t);
            has = is_file(p, NULL);
        }
        if (!has)
            continue;
        snprintf(p, sizeof p, "%s/%s", in->path, cands[i]);
        char *real = realpath(p, NULL);
        if (!real)
            continue;
        if (n > 0 && strcmp(real, found[0]) == 0) {
            free(real);
            continue;
        }
        if (n < 2)
            snprintf(found[n++], PATH_MAX, "%s", real);
        free(real);
    }
    if (n > 1)
        return l3d_fail(err, L3D_EINPUT,
                        "%s: holds tables of more than one split ('%s' and '%s'); pass the "
                        "folder of one split instead",
                        in->path, found[0], found[1]);
    if (n == 1) {
        snprintf(in->tables, sizeof in->tables, "%s", found[0]);
        snprintf(in->root, sizeof in->root, "%s", found[0]);
        char *slash = strrchr(in->root, '/');
        if (slash && slash != in->root)
            *slash = 0;
    } else {
        snprintf(in->root, sizeof in->root, "%s", in->path); /* a LiDAR-only folder */
    }
    return L3D_OK;
}

int l3d_source_open(l3d_source **out, char *const *paths, int n_paths, l3d_err *err)
{
    *out = NULL;
    if (n_paths <= 0)
        return l3d_fail(err, L3D_EUSAGE, "no dataset source given");
    l3d_source *src = calloc(1, sizeof *src);
    if (!src)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    src->in = calloc((size_t)n_paths, sizeof *src->in);
    if (!src->in) {
        free(src);
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    }
    src->n = n_paths;
    for (int i = 0; i < n_paths; i++)
        src->in[i].root_fd = -1;
    pthread_mutex_init(&src->lidar_mu, NULL);
    l3d_strmap_init(&src->bins);
    l3d_strmap_init(&src->found);
    l3d_strmap_init(&src->dirs);
    for (int i = 0; i < n_paths; i++) {
        input *in = &src->in[i];
        char *real = realpath(paths[i], NULL);
        if (!real) {
            int e = errno;
            l3d_source_close(src);
            return l3d_fail(err, e == ENOENT ? L3D_EIO : L3D_EIO, "%s: %s", paths[i],
                            strerror(e));
        }
        snprintf(in->path, sizeof in->path, "%s", real);
        free(real);
        in->is_dir = is_dir(in->path);
        if (in->is_dir) {
            int rc = find_table_dir(in, err);
            if (rc) {
                l3d_source_close(src);
                return rc;
            }
            in->root_fd = open(in->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        } else if (access(in->path, R_OK) != 0) {
            int e = errno;
            l3d_source_close(src);
            return l3d_fail(err, L3D_EIO, "%s: %s", in->path, strerror(e));
        }
    }
    *out = src;
    return L3D_OK;
}

void l3d_source_close(l3d_source *src)
{
    if (!src)
        return;
    for (size_t i = 0; i < src->n_members; i++)
        free(src->members[i].member);
    free(src->members);
    l3d_strmap_free(&src->bins);
    l3d_strmap_free_keys(&src->found);
    l3d_strmap_free_keys(&src->dirs);
    for (size_t i = 0; i < src->n_locs; i++)
        free((char *)src->loc_blocks[i / LOC_BLOCK][i % LOC_BLOCK].rel);
    for (size_t i = 0; i < src->n_loc_blocks; i++)
        free(src->loc_blocks[i]);
    free(src->loc_blocks);
    pthread_mutex_destroy(&src->lidar_mu);
    for (int i = 0; i < src->n; i++)
        if (src->in[i].root_fd >= 0)
            close(src->in[i].root_fd);
    free(src->in);
    free(src);
}

int l3d_stream_read(l3d_stream *s, void *buf, size_t n, size_t *got, l3d_err *err)
{
    *got = 0;
    if (s->fp) {
        size_t k = fread(buf, 1, n, s->fp);
        if (k == 0 && ferror(s->fp))
            return l3d_fail(err, L3D_EIO, "%s: read error: %s", s->display, strerror(errno));
        *got = k;
        return L3D_OK;
    }
    la_ssize_t k = archive_read_data(s->ar, buf, n);
    if (k < 0)
        return l3d_fail(err, L3D_EARCHIVE, "%s: damaged archive member: %s", s->display,
                        archive_error_string(s->ar));
    *got = (size_t)k;
    return L3D_OK;
}

const char *l3d_stream_path(const l3d_stream *s) { return s->fp ? s->display : NULL; }

int64_t l3d_count_nonfinite_f32(const void *buf, size_t n_bytes)
{
    int64_t bad = 0;
    const unsigned char *b = buf;
    for (size_t i = 0; i + 4 <= n_bytes; i += 4) {
        uint32_t u = (uint32_t)b[i] | (uint32_t)b[i + 1] << 8 | (uint32_t)b[i + 2] << 16 |
                     (uint32_t)b[i + 3] << 24;
        bad += (u & 0x7f800000u) == 0x7f800000u; /* exponent all ones: inf or NaN */
    }
    return bad;
}

static int wanted_table(const char *const *wanted, const char *member, char *table, size_t n)
{
    const char *b = base_name(member);
    size_t len = strlen(b);
    if (len < 6 || strcmp(b + len - 5, ".json") != 0 || strstr(member, "__MACOSX"))
        return 0;
    for (int i = 0; wanted[i]; i++)
        if (strlen(wanted[i]) == len - 5 && strncmp(b, wanted[i], len - 5) == 0) {
            snprintf(table, n, "%s", wanted[i]);
            return 1;
        }
    return 0;
}

static int add_member(l3d_source *src, int input_idx, const char *name, int64_t size,
                      int64_t nonfinite, l3d_err *err)
{
    const char *b = base_name(name);
    if (l3d_strmap_get(&src->bins, b))
        return l3d_fail(err, L3D_EINPUT, "%s: LiDAR file '%s' appears twice in the archives",
                        src->in[input_idx].path, b);
    if (src->n_members == src->cap_members) {
        size_t cap = src->cap_members ? 2 * src->cap_members : 1024;
        lidar_member *m = realloc(src->members, cap * sizeof *m);
        if (!m)
            return l3d_fail(err, L3D_EINTERNAL, "out of memory");
        src->members = m;
        src->cap_members = cap;
    }
    lidar_member *m = &src->members[src->n_members];
    m->member = strdup(name);
    m->input = input_idx;
    m->size = size;
    m->nonfinite = nonfinite;
    if (!m->member || !l3d_strmap_put(&src->bins, base_name(m->member), src->n_members + 1))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    src->n_members++;
    return L3D_OK;
}

/* Reads a .bin member to learn its size and (optionally) count bad floats. */
static int measure_member(struct archive *ar, const char *display, int verify, int64_t *size,
                          int64_t *nonfinite, l3d_err *err)
{
    static unsigned char buf[1 << 16];
    int64_t total = 0, bad = 0;
    unsigned char carry[4];
    size_t n_carry = 0;
    for (;;) {
        la_ssize_t k = archive_read_data(ar, buf, sizeof buf);
        if (k < 0)
            return l3d_fail(err, L3D_EARCHIVE, "%s: damaged archive member: %s", display,
                            archive_error_string(ar));
        if (k == 0)
            break;
        if (verify) {
            /* keep float alignment across chunks */
            size_t off = 0;
            while (n_carry && n_carry < 4 && off < (size_t)k)
                carry[n_carry++] = buf[off++];
            if (n_carry == 4) {
                bad += l3d_count_nonfinite_f32(carry, 4);
                n_carry = 0;
            }
            size_t whole = ((size_t)k - off) / 4 * 4;
            bad += l3d_count_nonfinite_f32(buf + off, whole);
            for (size_t i = off + whole; i < (size_t)k; i++)
                carry[n_carry++] = buf[i];
        }
        total += k;
    }
    *size = total;
    *nonfinite = verify ? bad : -1;
    return L3D_OK;
}

static int scan_archive(l3d_source *src, int idx, const char *const *wanted, int verify,
                        l3d_table_fn fn, void *ctx, l3d_err *err)
{
    input *in = &src->in[idx];
    struct archive *ar = archive_read_new();
    if (!ar)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    archive_read_support_filter_all(ar);
    archive_read_support_format_all(ar);
    int rc = L3D_OK;
    if (archive_read_open_filename(ar, in->path, 1 << 16) != ARCHIVE_OK) {
        rc = l3d_fail(err, L3D_EARCHIVE, "%s: cannot open as an archive: %s", in->path,
                      archive_error_string(ar));
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(ar, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) { /* WARN and RETRY are errors too: the archive is damaged */
            rc = l3d_fail(err, L3D_EARCHIVE, "%s: damaged archive after %zu LiDAR members: %s",
                          in->path, src->n_members, archive_error_string(ar));
            goto out;
        }
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        const char *name = archive_entry_pathname(e);
        if (!name)
            continue;
        char display[PATH_MAX + 1100];
        snprintf(display, sizeof display, "%s:%s", in->path, name);
        char table[64];
        size_t len = strlen(name);
        if (wanted_table(wanted, name, table, sizeof table)) {
            l3d_stream s = {.ar = ar, .display = display};
            int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
            rc = fn(ctx, table, display, size, &s, err);
            if (rc)
                goto out;
        } else if (len > 4 && strcmp(name + len - 4, ".bin") == 0) {
            int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
            int64_t bad = -1;
            if (verify || size < 0) {
                rc = measure_member(ar, display, verify, &size, &bad, err);
                if (rc)
                    goto out;
            }
            rc = add_member(src, idx, name, size, bad, err);
            if (rc)
                goto out;
        }
    }
out:
    archive_read_free(ar);
    return rc;
}

static int scan_folder_table(input *in, const char *table, l3d_table_fn fn, void *ctx,
                             l3d_err *err)
{
    char path[PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s.json", in->tables, table);
    int64_t size;
    if (!is_file(path, &size))
        return L3D_OK;
    l3d_stream s = {.display = path};
    s.fp = fopen(path, "rb");
    if (!s.fp)
        return l3d_fail(err, L3D_EIO, "%s: %s", path, strerror(errno));
    int rc = fn(ctx, table, path, size, &s, err);
    fclose(s.fp);
    return rc;
}

int l3d_source_scan(l3d_source *src, const char *const *wanted, int verify_lidar,
                    l3d_table_fn fn, void *ctx, l3d_err *err)
{
    for (int i = 0; i < src->n; i++) {
        input *in = &src->in[i];
        int rc = L3D_OK;
        if (!in->is_dir)
            rc = scan_archive(src, i, wanted, verify_lidar, fn, ctx, err);
        else if (in->tables[0])
            for (int t = 0; wanted[t] && !rc; t++)
                rc = scan_folder_table(in, wanted[t], fn, ctx, err);
        if (rc)
            return rc;
    }
    return L3D_OK;
}

int64_t l3d_source_table_bytes(l3d_source *src, const char *const *wanted)
{
    int64_t total = 0;
    for (int i = 0; i < src->n; i++) {
        input *in = &src->in[i];
        if (!in->is_dir) {
            int64_t size;
            if (is_file(in->path, &size))
                total += size; /* archives: the whole file streams past */
            continue;
        }
        for (int t = 0; in->tables[0] && wanted[t]; t++) {
            char path[PATH_MAX + 80];
            int64_t size;
            snprintf(path, sizeof path, "%s/%s.json", in->tables, wanted[t]);
            if (is_file(path, &size))
                total += size;
        }
    }
    return total;
}

/* Called on several threads at once (index lines are built on a pool):
 * each call reads into a buffer of its own. */
static int verify_file(const char *path, int64_t *bad, l3d_err *err)
{
    enum { BUF = 1 << 16 };   /* a multiple of 4, so floats never straddle reads */
    unsigned char *buf = malloc(BUF);
    if (!buf)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        free(buf);
        return l3d_fail(err, L3D_EIO, "%s: %s", path, strerror(errno));
    }
    int64_t total = 0;
    size_t k;
    while ((k = fread(buf, 1, BUF, fp)) > 0)
        total += l3d_count_nonfinite_f32(buf, k / 4 * 4);
    int failed = ferror(fp);
    fclose(fp);
    free(buf);
    if (failed)
        return l3d_fail(err, L3D_EIO, "%s: read error", path);
    *bad = total;
    return L3D_OK;
}

const char *l3d_source_root(const l3d_source *src)
{
    for (int i = 0; i < src->n; i++)
        if (src->in[i].is_dir)
            return src->in[i].root;
    return src->in[0].path;
}

static int find_lidar_uncached(l3d_source *src, const char *filename, l3d_lidar_loc *loc,
                               char rel[REL_MAX], char verify_path[PATH_MAX + 1100],
                               l3d_err *err);

/* Remembers a new answer (under lidar_mu), with a copy of its path; NULL
 * on OOM. */
static const l3d_lidar_loc *remember(l3d_source *src, const char *filename,
                                     const l3d_lidar_loc *found)
{
    if (src->n_locs == src->n_loc_blocks * LOC_BLOCK) {
        l3d_lidar_loc **b = realloc(src->loc_blocks, (src->n_loc_blocks + 1) * sizeof *b);
        if (!b)
            return NULL;
        src->loc_blocks = b;
        if (!(b[src->n_loc_blocks] = malloc(LOC_BLOCK * sizeof **b)))
            return NULL;
        src->n_loc_blocks++;
    }
    char *key = strdup(filename), *rel = strdup(found->rel);
    if (!key || !rel || !l3d_strmap_put(&src->found, key, src->n_locs + 1)) {
        free(key);
        free(rel);
        return NULL;
    }
    l3d_lidar_loc *l = &src->loc_blocks[src->n_locs / LOC_BLOCK][src->n_locs % LOC_BLOCK];
    *l = *found;
    l->rel = rel;
    src->n_locs++;
    return l;
}

static const l3d_lidar_loc *known(const l3d_source *src, const char *filename)
{
    size_t k = l3d_strmap_get(&src->found, filename) - 1;
    return k + 1 ? &src->loc_blocks[k / LOC_BLOCK][k % LOC_BLOCK] : NULL;
}

/* Thread-safe. Two threads may look up (and verify) one file at once:
 * both get the answer remembered first. */
int l3d_source_find_lidar(l3d_source *src, const char *filename, int verify,
                          const l3d_lidar_loc **loc, l3d_err *err)
{
    pthread_mutex_lock(&src->lidar_mu);
    *loc = known(src, filename);
    pthread_mutex_unlock(&src->lidar_mu);
    if (*loc)
        return L3D_OK;
    l3d_lidar_loc found;
    char rel[REL_MAX], verify_path[PATH_MAX + 1100];
    int rc = find_lidar_uncached(src, filename, &found, rel, verify_path, err);
    if (!rc && verify && verify_path[0])
        rc = verify_file(verify_path, &found.nonfinite, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&src->lidar_mu);
    if (!(*loc = known(src, filename)))
        *loc = remember(src, filename, &found);
    pthread_mutex_unlock(&src->lidar_mu);
    return *loc ? L3D_OK : l3d_fail(err, L3D_EINTERNAL, "out of memory");
}

/* Whether the folder part of path is a folder (remembered; the stat is made
 * without the lock); -1 on OOM. */
static int folder_present(l3d_source *src, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 1;
    char dir[PATH_MAX + 1100];
    size_t len = (size_t)(slash - path);
    memcpy(dir, path, len);
    dir[len] = 0;
    pthread_mutex_lock(&src->lidar_mu);
    size_t v = l3d_strmap_get_n(&src->dirs, dir, len);
    pthread_mutex_unlock(&src->lidar_mu);
    if (v)
        return v == 2;
    v = is_dir(dir) ? 2 : 1;
    int ok = 1;
    pthread_mutex_lock(&src->lidar_mu);
    if (!l3d_strmap_get_n(&src->dirs, dir, len)) {
        char *key = strdup(dir);
        ok = key && l3d_strmap_put_n(&src->dirs, key, len, v);
        if (!ok)
            free(key);
    }
    pthread_mutex_unlock(&src->lidar_mu);
    return ok ? v == 2 : -1;
}

/* is_file(path) for path = in->root + "/" + rel, through in->root_fd. */
static int is_file_in(const input *in, const char *rel, const char *path, int64_t *size)
{
    if (in->root_fd < 0 || rel[0] == '/')   /* fstatat would ignore the folder */
        return is_file(path, size);
    struct stat st;
    if (fstatat(in->root_fd, rel, &st, 0) != 0 || !S_ISREG(st.st_mode))
        return 0;
    *size = (int64_t)st.st_size;
    return 1;
}

/* With loc->rel in rel, and verify_path set to the file to read when
 * verifying ("" if none). */
static int find_lidar_uncached(l3d_source *src, const char *filename, l3d_lidar_loc *loc,
                               char rel[REL_MAX], char verify_path[PATH_MAX + 1100],
                               l3d_err *err)
{
    verify_path[0] = 0;
    memset(loc, 0, sizeof *loc);
    loc->nonfinite = -1;
    rel[0] = 0;
    loc->rel = rel;
    const char *b = base_name(filename);
    for (int i = 0; i < src->n; i++) {
        input *in = &src->in[i];
        if (!in->is_dir)
            continue;
        const char *cands[] = {NULL, "lidar", "train_lidar", "test_lidar"};
        for (size_t c = 0; c < sizeof cands / sizeof *cands; c++) {
            char path[PATH_MAX + 1100];
            if (cands[c])
                snprintf(rel, REL_MAX, "%s/%s", cands[c], b);
            else
                snprintf(rel, REL_MAX, "%s", filename);
            snprintf(path, sizeof path, "%s/%s", in->root, rel);
            int64_t size;
            int in_dir = folder_present(src, path);
            if (in_dir < 0)
                return l3d_fail(err, L3D_EINTERNAL, "out of memory");
            if (!in_dir || !is_file_in(in, rel, path, &size))
                continue;
            loc->found = 1;
            loc->root = in->root;
            loc->size = size;
            memcpy(verify_path, path, strlen(path) + 1);
            return L3D_OK;
        }
    }
    rel[0] = 0;   /* not in a folder */
    size_t m = l3d_strmap_get(&src->bins, b);
    if (m) {
        lidar_member *lm = &src->members[m - 1];
        loc->found = 1;
        loc->root = src->in[lm->input].path;
        snprintf(rel, REL_MAX, "%s", lm->member);
        loc->size = lm->size;
        loc->nonfinite = lm->nonfinite;
    }
    return L3D_OK;
}
