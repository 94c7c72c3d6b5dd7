/* Checkpoint files; the format is described in checkpoint.h. */
#include "trainer/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/atomic_file.h"
#include "formats/h5cache.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint arrays are written in host order, which must be little-endian"
#endif

#define HDR 64
#define ENT 64
#define TRAILER 16
#define MAX_SECTIONS 16
#define TREC (L3D_TENSOR_NAME_MAX + 8 + 8 * L3D_TENSOR_MAX_DIMS + 16)
static const char MAGIC[8] = "L3DCKPT", END_MAGIC[8] = "L3DEND";

typedef struct sec {
    char name[32];
    const uint8_t *data;
    uint64_t size, off, sum;
} sec;

static void put64(uint8_t *p, uint64_t x)
{
    memcpy(p, &x, 8);   /* little-endian host (checked above) */
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static uint64_t round64(uint64_t n)
{
    return (n + 63) & ~(uint64_t)63;
}

static uint8_t *encode_table(const l3d_table *t, size_t *len)
{
    *len = (size_t)t->n * TREC;
    uint8_t *b = calloc(*len ? *len : 1, 1);
    for (int i = 0; b && i < t->n; i++) {
        uint8_t *r = b + (size_t)i * TREC;
        const l3d_tensor_info *e = &t->t[i];
        memcpy(r, e->name, strlen(e->name));
        put64(r + L3D_TENSOR_NAME_MAX, (uint64_t)e->ndim);
        for (int d = 0; d < L3D_TENSOR_MAX_DIMS; d++)
            put64(r + L3D_TENSOR_NAME_MAX + 8 + 8 * d, d < e->ndim ? (uint64_t)e->shape[d] : 0);
        put64(r + TREC - 16, e->offset);
        put64(r + TREC - 8, e->numel);
    }
    return b;
}

static void add(sec *s, int *n, const char *name, const void *data, size_t size)
{
    memset(&s[*n], 0, sizeof s[*n]);
    snprintf(s[*n].name, sizeof s[*n].name, "%s", name);
    s[*n].data = data;
    s[*n].size = data ? size : 0;
    (*n)++;
}

static int put(l3d_atomic_file *af, const void *p, size_t n, uint64_t *h)
{
    *h = l3d_checksum(p, n, *h);   /* chunks are multiples of 8: same as one pass */
    return n == 0 || fwrite(p, 1, n, af->fp) == n;
}

int l3d_ckpt_write(const char *path, const l3d_ckpt *c, l3d_err *err)
{
    const l3d_params *p = c->params;
    if (!p || !p->allocated || !c->opt || !c->scaler)
        return l3d_fail(err, L3D_EUSAGE,
                        "%s: checkpoint needs an allocated arena, optimizer and scaler", path);
    size_t ll, bl;
    uint8_t *lay = encode_table(&p->layout, &ll), *blay = encode_table(&p->bn_layout, &bl);
    uint8_t adamw[40], scaler[L3D_SCALER_BYTES], prog[16];
    uint64_t u;
    const double hp[4] = {c->opt->beta1, c->opt->beta2, c->opt->eps, c->opt->weight_decay};
    for (int i = 0; i < 4; i++) {
        memcpy(&u, &hp[i], 8);
        put64(adamw + 8 * i, u);
    }
    put64(adamw + 32, (uint64_t)c->opt->step);
    l3d_scaler_save(c->scaler, scaler);
    put64(prog, (uint64_t)c->step);
    put64(prog + 8, (uint64_t)c->epoch);

    sec s[MAX_SECTIONS];
    int n = 0;
    size_t pb = p->layout.numel * sizeof(float);
    add(s, &n, "layout", lay, ll);
    add(s, &n, "bn_layout", blay, bl);
    add(s, &n, "params", p->param, pb);
    add(s, &n, "bn_stats", p->bn, p->bn_layout.numel * sizeof(float));
    add(s, &n, "adam_m", p->m, pb);
    add(s, &n, "adam_v", p->v, pb);
    if (p->master)
        add(s, &n, "master", p->master, pb);
    add(s, &n, "adamw", adamw, sizeof adamw);
    add(s, &n, "scaler", scaler, sizeof scaler);
    add(s, &n, "progress", prog, sizeof prog);
    add(s, &n, "rng", c->rng, c->rng_len);
    add(s, &n, "data_pos", c->data_pos, c->data_pos_len);
    add(s, &n, "config", c->config, c->config ? strlen(c->config) : 0);
    add(s, &n, "cache_hashes", c->cache_hashes, c->cache_hashes ? strlen(c->cache_hashes) : 0);

    uint8_t head[HDR + ENT * MAX_SECTIONS];
    memset(head, 0, sizeof head);
    uint64_t off = HDR + ENT * (uint64_t)n;
    for (int i = 0; i < n; i++) {
        s[i].off = off;
        s[i].sum = l3d_checksum(s[i].data, s[i].size, L3D_CHECKSUM_INIT);
        off += round64(s[i].size);
        uint8_t *e = head + HDR + ENT * i;
        memcpy(e, s[i].name, strlen(s[i].name));
        put64(e + 32, s[i].off);
        put64(e + 40, s[i].size);
        put64(e + 48, s[i].sum);
    }
    memcpy(head, MAGIC, 8);
    put64(head + 8, (uint64_t)L3D_CKPT_VERSION | (uint64_t)n << 32);
    put64(head + 16, off + TRAILER);
    put64(head + 24, (uint64_t)c->step);

    l3d_atomic_file af;
    int rc = l3d_atomic_open(&af, path, err);
    if (rc == L3D_OK) {
        uint64_t h = L3D_CHECKSUM_INIT;
        int ok = put(&af, head, HDR + ENT * (size_t)n, &h);
        for (int i = 0; ok && i < n; i++) {
            /* Whole words of the payload, then its last bytes with the padding. */
            size_t whole = s[i].size & ~(size_t)7, tail = s[i].size - whole;
            uint8_t pad[72] = {0};
            if (tail)
                memcpy(pad, s[i].data + whole, tail);
            ok = put(&af, s[i].data, whole, &h) &&
                 put(&af, pad, round64(s[i].size) - whole, &h);
        }
        uint8_t tr[TRAILER];
        memcpy(tr, END_MAGIC, 8);
        put64(tr + 8, h);
        ok = ok && fwrite(tr, 1, TRAILER, af.fp) == TRAILER;
        if (!ok) {
            int e = errno;
            l3d_atomic_abort(&af);
            rc = l3d_fail(err, L3D_EIO, "cannot write '%s': %s", path, strerror(e));
        } else {
            rc = l3d_atomic_commit(&af, err);
        }
    }
    free(lay);
    free(blay);
    return rc;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct parsed {
    sec s[MAX_SECTIONS];
    int n;
} parsed;

static const sec *find(const parsed *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->s[i].name, name) == 0)
            return &f->s[i];
    return NULL;
}

static int read_all(const char *path, uint8_t **buf, size_t *len, l3d_err *err)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return l3d_fail(err, L3D_EIO, "cannot open '%s': %s", path, strerror(e));
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    size_t got = 0;
    errno = 0;
    while (*buf && got < *len) {
        ssize_t r = read(fd, *buf + got, *len - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    int e = errno;
    close(fd);
    if (!*buf)
        return l3d_fail(err, L3D_EINTERNAL, "cannot read '%s': out of memory", path);
    if (got != *len) {
        free(*buf);
        *buf = NULL;
        return l3d_fail(err, L3D_EIO, "cannot read '%s': %s", path, e ? strerror(e) : "short read");
    }
    return L3D_OK;
}

/* Checks the envelope and every checksum; fills f with the sections. */
static int validate(const char *path, const uint8_t *b, size_t len, parsed *f, l3d_err *err)
{
    if (len < HDR + TRAILER)
        return l3d_fail(err, L3D_EINPUT, "%s: truncated (%zu bytes)", path, len);
    if (memcmp(b, MAGIC, 8) != 0)
        return l3d_fail(err, L3D_EINPUT, "%s: not a checkpoint (bad magic)", path);
    uint64_t vn = get64(b + 8), size = get64(b + 16);
    if ((uint32_t)vn != L3D_CKPT_VERSION)
        return l3d_fail(err, L3D_EINPUT, "%s: version %u, this build reads version %d", path,
                        (unsigned)(uint32_t)vn, L3D_CKPT_VERSION);
    if (size != len)
        return l3d_fail(err, L3D_EINPUT, "%s: %zu bytes, header says %llu (truncated or padded)",
                        path, len, (unsigned long long)size);
    f->n = (int)(vn >> 32);
    if (f->n < 1 || f->n > MAX_SECTIONS || HDR + ENT * (uint64_t)f->n > len - TRAILER)
        return l3d_fail(err, L3D_EINPUT, "%s: bad section count %d", path, f->n);
    for (int i = 0; i < f->n; i++) {
        const uint8_t *e = b + HDR + ENT * i;
        sec *s = &f->s[i];
        memcpy(s->name, e, 32);
        s->name[31] = 0;
        s->off = get64(e + 32);
        s->size = get64(e + 40);
        s->sum = get64(e + 48);
        if (s->off > len - TRAILER || s->size > len - TRAILER - s->off)
            return l3d_fail(err, L3D_EINPUT, "%s: section '%s' lies outside the file", path,
                            s->name);
        s->data = b + s->off;
        if (l3d_checksum(s->data, s->size, L3D_CHECKSUM_INIT) != s->sum)
            return l3d_fail(err, L3D_EINPUT, "%s: section '%s': checksum mismatch", path, s->name);
    }
    if (memcmp(b + len - TRAILER, END_MAGIC, 8) != 0 ||
        l3d_checksum(b, len - TRAILER, L3D_CHECKSUM_INIT) != get64(b + len - 8))
        return l3d_fail(err, L3D_EINPUT, "%s: whole-file checksum mismatch", path);
    static const char *required[] = {"layout", "bn_layout", "params", "bn_stats", "adam_m",
                                     "adam_v", "adamw", "scaler", "progress", "rng",
                                     "data_pos", "config", "cache_hashes"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!find(f, required[i]))
            return l3d_fail(err, L3D_EINPUT, "%s: no section '%s'", path, required[i]);
    return L3D_OK;
}

static int check_table(const char *path, const char *what, const sec *s, const l3d_table *want,
                       l3d_err *err)
{
    l3d_table t = {0};
    char why[512] = "";
    int ok = s->size % TREC == 0 && s->size / TREC <= (uint64_t)INT32_MAX;
    if (ok) {
        t.n = t.cap = (int)(s->size / TREC);
        t.t = calloc((size_t)t.n + 1, sizeof *t.t);
        ok = t.t != NULL;
    }
    for (int i = 0; ok && i < t.n; i++) {
        const uint8_t *r = s->data + (size_t)i * TREC;
        l3d_tensor_info *e = &t.t[i];
        memcpy(e->name, r, L3D_TENSOR_NAME_MAX);
        e->name[L3D_TENSOR_NAME_MAX - 1] = 0;
        uint64_t nd = get64(r + L3D_TENSOR_NAME_MAX);
        if (nd > L3D_TENSOR_MAX_DIMS) {
            ok = 0;
            break;
        }
        e->ndim = (int)nd;
        for (int d = 0; d < L3D_TENSOR_MAX_DIMS; d++)
            e->shape[d] = (int64_t)get64(r + L3D_TENSOR_NAME_MAX + 8 + 8 * d);
        e->offset = get64(r + TREC - 16);
        e->numel = get64(r + TREC - 8);
    }
    t.numel = want->numel;   /* array sizes are checked separately */
    ok = ok && l3d_table_equal(&t, want, why, sizeof why);
    free(t.t);
    if (!ok)
        return l3d_fail(err, L3D_ESCHEMA, "%s: %s does not match this model: %s", path, what,
                        why[0] ? why : "malformed table");
    return L3D_OK;
}

static int check_size(const char *path, const sec *s, uint64_t want, int code, l3d_err *err)
{
    if (s->size != want)
        return l3d_fail(err, code, "%s: section '%s' has %llu bytes, expected %llu", path,
                        s->name, (unsigned long long)s->size, (unsigned long long)want);
    return L3D_OK;
}

static void *dup_bytes(const sec *s, int nul)
{
    uint8_t *d = malloc(s->size + 1);
    if (d) {
        memcpy(d, s->data, s->size);
        if (nul)
            d[s->size] = 0;
    }
    return d;
}

int l3d_ckpt_read(const char *path, l3d_ckpt *c, l3d_err *err)
{
    l3d_params *p = c->params;
    if (!p || !p->allocated || !c->opt || !c->scaler)
        return l3d_fail(err, L3D_EUSAGE,
                        "%s: checkpoint needs an allocated arena, optimizer and scaler", path);
    uint8_t *b = NULL;
    size_t len = 0;
    parsed f;
    int rc = read_all(path, &b, &len, err);
    if (rc != L3D_OK)
        return rc;
    uint64_t pb = p->layout.numel * sizeof(float);
    const sec *master = NULL;
    l3d_loss_scaler sc;
    rc = validate(path, b, len, &f, err);
    if (rc == L3D_OK)
        rc = check_table(path, "parameter table", find(&f, "layout"), &p->layout, err);
    if (rc == L3D_OK)
        rc = check_table(path, "BN statistics table", find(&f, "bn_layout"), &p->bn_layout, err);
    master = rc == L3D_OK ? find(&f, "master") : NULL;
    const char *arrays[] = {"params", "adam_m", "adam_v", "master"};
    for (int i = 0; i < 4 && rc == L3D_OK; i++)
        if (find(&f, arrays[i]))
            rc = check_size(path, find(&f, arrays[i]), pb, L3D_ESCHEMA, err);
    if (rc == L3D_OK)
        rc = check_size(path, find(&f, "bn_stats"), p->bn_layout.numel * sizeof(float),
                        L3D_ESCHEMA, err);
    if (rc == L3D_OK)
        rc = check_size(path, find(&f, "adamw"), 40, L3D_EINPUT, err);
    if (rc == L3D_OK)
        rc = check_size(path, find(&f, "progress"), 16, L3D_EINPUT, err);
    if (rc == L3D_OK)
        rc = check_size(path, find(&f, "scaler"), L3D_SCALER_BYTES, L3D_EINPUT, err);
    if (rc == L3D_OK && l3d_scaler_restore(&sc, find(&f, "scaler")->data) != 0)
        rc = l3d_fail(err, L3D_EINPUT, "%s: section 'scaler' holds no valid scaler state", path);
    uint8_t *rng = NULL, *pos = NULL;
    char *cfg = NULL, *hashes = NULL;
    if (rc == L3D_OK) {
        rng = dup_bytes(find(&f, "rng"), 0);
        pos = dup_bytes(find(&f, "data_pos"), 0);
        cfg = dup_bytes(find(&f, "config"), 1);
        hashes = dup_bytes(find(&f, "cache_hashes"), 1);
        if (!rng || !pos || !cfg || !hashes) {
            free(rng), free(pos), free(cfg), free(hashes);
            rc = l3d_fail(err, L3D_EINTERNAL, "%s: out of memory", path);
        }
    }
    if (rc == L3D_OK) {   /* valid: only now touch the caller's state */
        memcpy(p->param, find(&f, "params")->data, pb);
        memcpy(p->m, find(&f, "adam_m")->data, pb);
        memcpy(p->v, find(&f, "adam_v")->data, pb);
        memcpy(p->bn, find(&f, "bn_stats")->data, p->bn_layout.numel * sizeof(float));
        if (p->master)
            memcpy(p->master, master ? master->data : (const uint8_t *)p->param, pb);
        c->opt->step = (int64_t)get64(find(&f, "adamw")->data + 32);
        *c->scaler = sc;
        c->step = (int64_t)get64(find(&f, "progress")->data);
        c->epoch = (int64_t)get64(find(&f, "progress")->data + 8);
        c->rng = rng, c->rng_len = find(&f, "rng")->size;
        c->data_pos = pos, c->data_pos_len = find(&f, "data_pos")->size;
        c->config = cfg, c->cache_hashes = hashes;
    }
    free(b);
    return rc;
}

void l3d_ckpt_free_blobs(l3d_ckpt *c)
{
    free(c->rng), free(c->data_pos), free(c->config), free(c->cache_hashes);
    c->rng = c->data_pos = NULL;
    c->config = c->cache_hashes = NULL;
    c->rng_len = c->data_pos_len = 0;
}

/* ---- a directory of checkpoints ------------------------------------------- */

/* "ckpt-<digits>.l3d" -> 1, "ckpt-<digits>.l3d.tmp.<anything>" -> 2, else 0. */
static int parse_name(const char *name, int64_t *step)
{
    if (strncmp(name, "ckpt-", 5) != 0)
        return 0;
    const char *d = name + 5, *q = d;
    int64_t v = 0;
    while (*q >= '0' && *q <= '9' && q - d < 18)
        v = v * 10 + (*q++ - '0');
    if (q == d || strncmp(q, ".l3d", 4) != 0)
        return 0;
    *step = v;
    if (q[4] == 0)
        return 1;
    return strncmp(q + 4, ".tmp.", 5) == 0 ? 2 : 0;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int l3d_ckpt_list(const char *dir, int64_t **steps, int *n, l3d_err *err)
{
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return L3D_OK;
        return l3d_fail(err, L3D_EIO, "cannot list '%s': %s", dir, strerror(errno));
    }
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t st;
        if (parse_name(e->d_name, &st) != 1)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *ns = realloc(*steps, (size_t)cap * sizeof *ns);
            if (!ns) {
                closedir(d);
                free(*steps);
                *steps = NULL;
                *n = 0;
                return l3d_fail(err, L3D_EINTERNAL, "out of memory listing '%s'", dir);
            }
            *steps = ns;
        }
        (*steps)[(*n)++] = st;
    }
    closedir(d);
    if (*n)
        qsort(*steps, (size_t)*n, sizeof **steps, cmp_desc);
    return L3D_OK;
}

static void ckpt_path(char *buf, size_t len, const char *dir, int64_t step)
{
    snprintf(buf, len, "%s/ckpt-%08lld.l3d", dir, (long long)step);
}

/* Deletes all but the keep newest checkpoints (never `written`) and any
 * temporaries of killed writers. Best effort: a file that will not go stays. */
static void prune(const char *dir, int keep, int64_t written)
{
    char path[4400];
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int64_t st;
        if (parse_name(e->d_name, &st) == 2) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
    int64_t *steps;
    int n;
    if (keep <= 0 || l3d_ckpt_list(dir, &steps, &n, NULL) != L3D_OK)
        return;
    for (int i = keep; i < n; i++)
        if (steps[i] != written) {
            ckpt_path(path, sizeof path, dir, steps[i]);
            unlink(path);
        }
    free(steps);
}

int l3d_ckpt_save(const char *dir, int keep, const l3d_ckpt *c, char *path_out,
                  size_t path_len, l3d_err *err)
{
    char path[4400];
    if (c->step < 0)
        return l3d_fail(err, L3D_EUSAGE, "checkpoint step %lld is negative", (long long)c->step);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return l3d_fail(err, L3D_EIO, "cannot create checkpoint directory '%s': %s", dir,
                        strerror(errno));
    ckpt_path(path, sizeof path, dir, c->step);
    int rc = l3d_ckpt_write(path, c, err);
    if (rc != L3D_OK)
        return rc;
    prune(dir, keep, c->step);
    if (path_out && path_len)
        snprintf(path_out, path_len, "%s", path);
    return L3D_OK;
}

static void append(char *buf, size_t len, const char *line)
{
    if (!buf || !len)
        return;
    size_t k = strnlen(buf, len);
    if (k < len)
        snprintf(buf + k, len - k, "%s\n", line);
}

int l3d_ckpt_load_latest(const char *dir, l3d_ckpt *c, char *loaded, size_t loaded_len,
                         char *warn, size_t warn_len, l3d_err *err)
{
    if (loaded && loaded_len)
        loaded[0] = 0;
    if (warn && warn_len)
        warn[0] = 0;
    int64_t *steps;
    int n;
    int rc = l3d_ckpt_list(dir, &steps, &n, err);
    if (rc != L3D_OK)
        return rc;
    char path[4400], line[1200];
    for (int i = 0; i < n; i++) {
        l3d_err e = {0, ""};
        ckpt_path(path, sizeof path, dir, steps[i]);
        if (l3d_ckpt_read(path, c, &e) == L3D_OK) {
            if (loaded && loaded_len)
                snprintf(loaded, loaded_len, "%s", path);
            free(steps);
            return L3D_OK;
        }
        snprintf(line, sizeof line, "skipped checkpoint: %s", e.msg);
        append(warn, warn_len, line);
    }
    free(steps);
    if (n == 0)
        return L3D_OK;
    return l3d_fail(err, L3D_EINPUT, "no valid checkpoint among the %d in '%s'", n, dir);
}
