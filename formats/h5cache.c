#include "formats/h5cache.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/fileio.h"

#define CHECKSUM_ATTR "checksum_fnv1a64w"

/* HDF5 prints its error stack by default; our messages say what failed. */
static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* FNV-1a over little-endian 8-byte words, then the trailing bytes: a cheap
 * integrity check (several GB/s), not a cryptographic hash. */
uint64_t l3d_checksum(const void *data, size_t n, uint64_t h)
{
    const unsigned char *b = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 1099511628211ull;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

hid_t l3d_h5_str_type(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    return t;
}

/* ---- writing ---------------------------------------------------------- */

int l3d_h5w_create(l3d_h5w *w, const char *path, l3d_err *err)
{
    quiet_hdf5();
    memset(w, 0, sizeof *w);
    w->file = H5I_INVALID_HID;
    if (strlen(path) >= sizeof w->path)
        return l3d_fail(err, L3D_EUSAGE, "%s: path too long", path);
    strcpy(w->path, path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_alignment(fapl, 1, 4096);   /* every object on a page boundary: mmap-friendly */
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);   /* no timestamps: same input, same bytes */
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (w->file < 0)
        return l3d_fail(err, L3D_EIO, "cannot create '%s': %s", w->tmp,
                        errno ? strerror(errno) : "HDF5 error");
    return L3D_OK;
}

static int h5fail(l3d_h5w *w, l3d_err *err, const char *what, const char *name)
{
    return l3d_fail(err, L3D_EIO, "%s: cannot %s '%s' (disk full or I/O error?)", w->tmp, what,
                    name);
}

int l3d_h5w_dataset(l3d_h5w *w, const char *name, hid_t type, int rank, const hsize_t *dims,
                    const void *data, l3d_err *err)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_CONTIGUOUS);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    H5Pset_obj_track_times(dcpl, 0);
    hid_t d = H5Dcreate2(w->file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (d < 0)
        return h5fail(w, err, "create dataset", name);
    int rc = L3D_OK;
    if (data) {
        hsize_t n = 1;
        for (int i = 0; i < rank; i++)
            n *= dims[i];
        if (n && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
            rc = h5fail(w, err, "write dataset", name);
        H5Dclose(d);
        if (!rc)
            rc = l3d_h5w_set_checksum(w, name,
                                      l3d_checksum(data, n * H5Tget_size(type), L3D_CHECKSUM_INIT),
                                      err);
        return rc;
    }
    H5Dclose(d);
    return rc;
}

int l3d_h5w_write_rows(l3d_h5w *w, const char *name, hid_t type, hsize_t row0, hsize_t n,
                       const void *data, l3d_err *err)
{
    if (n == 0)
        return L3D_OK;
    hid_t d = H5Dopen2(w->file, name, H5P_DEFAULT);
    if (d < 0)
        return h5fail(w, err, "open dataset", name);
    hid_t fs = H5Dget_space(d);
    hsize_t dims[4], start[4] = {row0, 0, 0, 0}, count[4];
    int rank = H5Sget_simple_extent_dims(fs, dims, NULL);
    for (int i = 0; i < rank; i++)
        count[i] = i ? dims[i] : n;
    int rc = L3D_OK;
    if (rank < 1 || row0 + n > dims[0])
        rc = l3d_fail(err, L3D_EINTERNAL, "%s: rows %llu+%llu outside dataset '%s'", w->tmp,
                      (unsigned long long)row0, (unsigned long long)n, name);
    else {
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        hid_t ms = H5Screate_simple(rank, count, NULL);
        if (H5Dwrite(d, type, ms, fs, H5P_DEFAULT, data) < 0)
            rc = h5fail(w, err, "write dataset", name);
        H5Sclose(ms);
    }
    H5Sclose(fs);
    H5Dclose(d);
    return rc;
}

static hid_t open_obj(hid_t file, const char *obj)
{
    if (!obj || !obj[0] || !strcmp(obj, "/"))
        return H5Gopen2(file, "/", H5P_DEFAULT);
    return H5Oopen(file, obj, H5P_DEFAULT);
}

static int write_attr(l3d_h5w *w, const char *obj, const char *key, hid_t type, const void *v,
                      l3d_err *err)
{
    hid_t o = open_obj(w->file, obj);
    if (o < 0)
        return h5fail(w, err, "open", obj);
    if (H5Aexists(o, key) > 0)
        H5Adelete(o, key);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, type, v) < 0 ? h5fail(w, err, "write attribute", key) : L3D_OK;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    H5Oclose(o);
    return rc;
}

int l3d_h5w_set_checksum(l3d_h5w *w, const char *name, uint64_t sum, l3d_err *err)
{
    return write_attr(w, name, CHECKSUM_ATTR, H5T_NATIVE_UINT64, &sum, err);
}

int l3d_h5w_attr_str(l3d_h5w *w, const char *obj, const char *key, const char *val, l3d_err *err)
{
    hid_t t = l3d_h5_str_type(strlen(val) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    int rc = write_attr(w, obj, key, t, val, err);
    H5Tclose(t);
    return rc;
}

int l3d_h5w_attr_i64(l3d_h5w *w, const char *obj, const char *key, int64_t val, l3d_err *err)
{
    return write_attr(w, obj, key, H5T_NATIVE_INT64, &val, err);
}

int l3d_h5w_attr_f64(l3d_h5w *w, const char *obj, const char *key, double val, l3d_err *err)
{
    return write_attr(w, obj, key, H5T_NATIVE_DOUBLE, &val, err);
}

int l3d_h5w_commit(l3d_h5w *w, l3d_err *err)
{
    int bad = H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0;
    bad |= H5Fclose(w->file) < 0;
    w->file = H5I_INVALID_HID;
    int fd = open(w->tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0)
        bad = 1;
    if (fd >= 0)
        close(fd);
    if (bad) {
        unlink(w->tmp);
        return l3d_fail(err, L3D_EIO, "cannot write '%s' (disk full or I/O error?)", w->path);
    }
    if (rename(w->tmp, w->path) != 0) {
        int e = errno;
        unlink(w->tmp);
        return l3d_fail(err, L3D_EIO, "cannot rename '%s' to '%s': %s", w->tmp, w->path,
                        strerror(e));
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", w->path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* best effort */
        close(dfd);
    }
    return L3D_OK;
}

void l3d_h5w_abort(l3d_h5w *w)
{
    if (w->file >= 0)
        H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    if (w->tmp[0])
        unlink(w->tmp);
}

/* ---- reading ---------------------------------------------------------- */

int l3d_h5r_open(l3d_h5r *r, const char *path, const char *format, int64_t schema, l3d_err *err)
{
    quiet_hdf5();
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->file = H5I_INVALID_HID;
    snprintf(r->path, sizeof r->path, "%s", path);
    r->fd = open(path, O_RDONLY);
    if (r->fd < 0)
        return l3d_fail(err, L3D_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    fstat(r->fd, &st);
    r->map_len = (size_t)st.st_size;
    r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->file < 0) {
        l3d_h5r_close(r);
        return l3d_fail(err, L3D_EINPUT, "%s: not an HDF5 file, or truncated", path);
    }
    char fmt[128];
    int64_t version;
    if (l3d_h5r_attr_str(r, "/", "format", fmt, sizeof fmt, err) || strcmp(fmt, format) != 0) {
        l3d_h5r_close(r);
        return l3d_fail(err, L3D_EINPUT, "%s: not a %s (root attribute 'format' is missing or "
                        "different)", path, format);
    }
    if (l3d_h5r_attr_i64(r, "/", "schema_version", &version, err)) {
        l3d_h5r_close(r);
        return err->code;
    }
    if (version != schema) {
        l3d_h5r_close(r);
        return l3d_fail(err, L3D_EINPUT, "%s: schema version %lld, this build reads version %lld; "
                        "rebuild the cache with this version's tools", path, (long long)version,
                        (long long)schema);
    }
    const char *no_mmap = getenv("LIDAR3D_NO_MMAP");
    if (!(no_mmap && strcmp(no_mmap, "0")) && r->map_len) {
        r->map = mmap(NULL, r->map_len, PROT_READ, MAP_SHARED, r->fd, 0);
        if (r->map == MAP_FAILED)
            r->map = NULL; /* pread fallback */
    }
    return L3D_OK;
}

int l3d_h5r_has(l3d_h5r *r, const char *name)
{
    return H5Lexists(r->file, name, H5P_DEFAULT) > 0;
}

static int same_kind(hid_t a, hid_t b)
{
    H5T_class_t ca = H5Tget_class(a), cb = H5Tget_class(b);
    if (ca != cb || H5Tget_size(a) != H5Tget_size(b))
        return 0;
    if (ca == H5T_INTEGER)
        return H5Tget_sign(a) == H5Tget_sign(b) && H5Tget_order(a) == H5Tget_order(b);
    if (ca == H5T_FLOAT)
        return H5Tget_order(a) == H5Tget_order(b);
    return 1;
}

int l3d_h5r_view(l3d_h5r *r, const char *name, hid_t type, int rank, int verify,
                 l3d_h5view *v, l3d_err *err)
{
    memset(v, 0, sizeof *v);
    if (!l3d_h5r_has(r, name))
        return l3d_fail(err, L3D_EINPUT, "%s: dataset '%s' is missing", r->path, name);
    hid_t d = H5Dopen2(r->file, name, H5P_DEFAULT);
    hid_t ft = H5Dget_type(d), fs = H5Dget_space(d), dcpl = H5Dget_create_plist(d);
    int rc = L3D_OK;
    int got_rank = H5Sget_simple_extent_ndims(fs);
    if (!same_kind(ft, type) || got_rank != rank || rank > 4) {
        rc = l3d_fail(err, L3D_EINPUT, "%s: dataset '%s' has the wrong type or rank %d "
                      "(expected %d)", r->path, name, got_rank, rank);
        goto out;
    }
    if (H5Pget_layout(dcpl) != H5D_CONTIGUOUS) {
        rc = l3d_fail(err, L3D_EINPUT, "%s: dataset '%s' is not contiguous", r->path, name);
        goto out;
    }
    H5Sget_simple_extent_dims(fs, v->dims, NULL);
    v->rank = rank;
    v->elem = H5Tget_size(type);
    v->bytes = v->elem;
    for (int i = 0; i < rank; i++)
        v->bytes *= v->dims[i];
    if (v->bytes == 0)
        goto out;
    haddr_t off = H5Dget_offset(d);
    if (off == HADDR_UNDEF || off + v->bytes > r->map_len) {
        rc = l3d_fail(err, L3D_EINPUT, "%s: dataset '%s' lies beyond the end of the file "
                      "(truncated cache?)", r->path, name);
        goto out;
    }
    if (r->map && off % 8 == 0) {
        v->data = (const char *)r->map + off;
    } else {
        void *buf = malloc(v->bytes);
        void **owned = realloc(r->owned, (size_t)(r->n_owned + 1) * sizeof *owned);
        if (!buf || !owned) {
            free(buf);
            rc = l3d_fail(err, L3D_EINTERNAL, "out of memory");
            goto out;
        }
        r->owned = owned;
        r->owned[r->n_owned++] = buf;
        if (l3d_pread_all(r->fd, buf, v->bytes, (int64_t)off)) {
            rc = l3d_fail(err, L3D_EIO, "%s: cannot read dataset '%s'", r->path, name);
            goto out;
        }
        v->data = buf;
    }
    if (verify && H5Aexists(d, CHECKSUM_ATTR) > 0) {
        uint64_t want;
        hid_t a = H5Aopen(d, CHECKSUM_ATTR, H5P_DEFAULT);
        H5Aread(a, H5T_NATIVE_UINT64, &want);
        H5Aclose(a);
        if (l3d_checksum(v->data, v->bytes, L3D_CHECKSUM_INIT) != want)
            rc = l3d_fail(err, L3D_EINPUT, "%s: dataset '%s' fails its checksum (damaged cache)",
                          r->path, name);
    }
out:
    H5Pclose(dcpl);
    H5Sclose(fs);
    H5Tclose(ft);
    H5Dclose(d);
    return rc;
}

static int read_attr(l3d_h5r *r, const char *obj, const char *key, hid_t type, void *out,
                     l3d_err *err)
{
    hid_t o = open_obj(r->file, obj);
    if (o < 0 || H5Aexists(o, key) <= 0) {
        if (o >= 0)
            H5Oclose(o);
        return l3d_fail(err, L3D_EINPUT, "%s: attribute '%s' of '%s' is missing", r->path, key,
                        obj && obj[0] ? obj : "/");
    }
    hid_t a = H5Aopen(o, key, H5P_DEFAULT);
    int rc = H5Aread(a, type, out) < 0
                 ? l3d_fail(err, L3D_EINPUT, "%s: attribute '%s' has the wrong type", r->path, key)
                 : L3D_OK;
    H5Aclose(a);
    H5Oclose(o);
    return rc;
}

int l3d_h5r_attr_f64(l3d_h5r *r, const char *obj, const char *key, double *out, l3d_err *err)
{
    return read_attr(r, obj, key, H5T_NATIVE_DOUBLE, out, err);
}

int l3d_h5r_attr_i64(l3d_h5r *r, const char *obj, const char *key, int64_t *out, l3d_err *err)
{
    return read_attr(r, obj, key, H5T_NATIVE_INT64, out, err);
}

int l3d_h5r_attr_str(l3d_h5r *r, const char *obj, const char *key, char *out, size_t n,
                     l3d_err *err)
{
    hid_t o = open_obj(r->file, obj);
    if (o < 0 || H5Aexists(o, key) <= 0) {
        if (o >= 0)
            H5Oclose(o);
        return l3d_fail(err, L3D_EINPUT, "%s: attribute '%s' is missing", r->path, key);
    }
    hid_t a = H5Aopen(o, key, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    int rc = L3D_OK;
    size_t sz = H5Tget_size(ft);
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0 || sz >= n) {
        rc = l3d_fail(err, L3D_EINPUT, "%s: attribute '%s' is not a short fixed-length string",
                      r->path, key);
    } else {
        memset(out, 0, n);
        if (H5Aread(a, ft, out) < 0)
            rc = l3d_fail(err, L3D_EINPUT, "%s: cannot read attribute '%s'", r->path, key);
    }
    H5Tclose(ft);
    H5Aclose(a);
    H5Oclose(o);
    return rc;
}

void l3d_h5r_close(l3d_h5r *r)
{
    for (int i = 0; i < r->n_owned; i++)
        free(r->owned[i]);
    free(r->owned);
    r->owned = NULL;
    r->n_owned = 0;
    if (r->map)
        munmap(r->map, r->map_len);
    r->map = NULL;
    if (r->file >= 0)
        H5Fclose(r->file);
    r->file = H5I_INVALID_HID;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}
