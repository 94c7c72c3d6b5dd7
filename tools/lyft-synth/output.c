#include "tools/lyft-synth/output.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "formats/atomic_file.h"
#include "tools/lyft-synth/tables.h"

#define MAP_FILE "map_raster_palo_alto.png"
#define MEMBER_MTIME 1546819200   /* fixed member times keep archives reproducible */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) ? -1 : 0;
}

int syn_remove_tree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

static int is_empty_dir(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(dir)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(dir);
    return empty;
}

int syn_out_begin(syn_out *o, const char *outdir, int force, int tables_only, l3d_err *err)
{
    memset(o, 0, sizeof *o);
    size_t n = strlen(outdir);
    while (n > 1 && outdir[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof o->final - 64)
        return l3d_fail(err, L3D_EUSAGE, "OUTDIR '%s': empty or too long", outdir);
    memcpy(o->final, outdir, n);
    struct stat st;
    if (stat(o->final, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return l3d_fail(err, L3D_EUSAGE, "'%s' exists and is not a folder", o->final);
        if (!is_empty_dir(o->final)) {
            if (!force)
                return l3d_fail(err, L3D_EUSAGE,
                                "'%s' exists and is not empty; --force replaces it", o->final);
            o->replace = 1;
        }
    }
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp-%ld", o->final, (long)getpid());
    const char *subdirs[] = {"", "/train_data", "/train_maps", tables_only ? NULL : "/train_lidar"};
    for (int i = 0; i < 4 && subdirs[i]; i++) {
        char path[4300];
        snprintf(path, sizeof path, "%s%s", o->tmp, subdirs[i]);
        if ((i == 0 ? mkdir_p(path) : mkdir(path, 0777)) != 0) {
            l3d_fail(err, L3D_EIO, "cannot create '%s': %s", path, strerror(errno));
            if (i > 0)
                syn_remove_tree(o->tmp);
            return L3D_EIO;
        }
    }
    return L3D_OK;
}

static void fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);   /* best effort: some filesystems refuse directory fsync */
        close(fd);
    }
}

int syn_out_commit(syn_out *o, l3d_err *err)
{
    char path[4300], old[4300];
    const char *subdirs[] = {"train_data", "train_maps", "train_lidar"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", o->tmp, subdirs[i]);
        fsync_path(path);
    }
    fsync_path(o->tmp);
    snprintf(old, sizeof old, "%s.old-%ld", o->final, (long)getpid());
    if (o->replace && rename(o->final, old) != 0)
        return l3d_fail(err, L3D_EIO, "cannot move '%s' aside: %s", o->final, strerror(errno));
    if (!o->replace)
        rmdir(o->final);   /* an empty folder may be there */
    if (rename(o->tmp, o->final) != 0) {
        int saved = errno;
        if (o->replace)
            rename(old, o->final);
        return l3d_fail(err, L3D_EIO, "cannot rename '%s' to '%s': %s", o->tmp, o->final,
                        strerror(saved));
    }
    o->committed = 1;
    snprintf(path, sizeof path, "%s/..", o->final);
    fsync_path(path);
    if (o->replace && syn_remove_tree(old) != 0)
        return l3d_fail(err, L3D_EIO, "new dataset in '%s', but cannot remove the old one, now "
                        "'%s': %s", o->final, old, strerror(errno));
    return L3D_OK;
}

void syn_out_abort(syn_out *o)
{
    if (!o->committed && o->tmp[0])
        syn_remove_tree(o->tmp);
}

/* ---- map raster ----------------------------------------------------------- */

int syn_write_map_png(const char *path, l3d_err *err)
{
    enum { SIDE = 64 };
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return l3d_fail(err, L3D_EIO, "cannot create '%s': %s", path, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    static unsigned char row[SIDE * 4];
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        return l3d_fail(err, L3D_EIO, "cannot write '%s'", path);
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, SIDE, SIDE, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int x = 0; x < SIDE; x++) {
        row[4 * x] = row[4 * x + 1] = row[4 * x + 2] = 40;
        row[4 * x + 3] = 255;
    }
    for (int y = 0; y < SIDE; y++)
        png_write_row(png, row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    int bad = fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    if (fclose(fp) != 0 || bad)
        return l3d_fail(err, L3D_EIO, "cannot write '%s': %s", path, strerror(errno));
    return L3D_OK;
}

/* ---- archives ----------------------------------------------------------- */

static int add_member(struct archive *a, const char *root, const char *member, l3d_err *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", root, member);
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp || fstat(fileno(fp), &st) != 0) {
        if (fp)
            fclose(fp);
        return l3d_fail(err, L3D_EIO, "cannot read '%s': %s", path, strerror(errno));
    }
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, member);
    archive_entry_set_size(e, st.st_size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, MEMBER_MTIME, 0);
    int rc = L3D_OK;
    if (archive_write_header(a, e) != ARCHIVE_OK)
        rc = l3d_fail(err, L3D_EARCHIVE, "%s: %s", member, archive_error_string(a));
    static char buf[1 << 20];
    size_t k;
    while (!rc && (k = fread(buf, 1, sizeof buf, fp)) > 0)
        if (archive_write_data(a, buf, k) != (la_ssize_t)k)
            rc = l3d_fail(err, L3D_EARCHIVE, "%s: %s", member, archive_error_string(a));
    if (!rc && ferror(fp))
        rc = l3d_fail(err, L3D_EIO, "cannot read '%s'", path);
    archive_entry_free(e);
    fclose(fp);
    return rc;
}

static int pack_one(const syn_dataset *d, const char *root, const char *what, const char *format,
                    volatile sig_atomic_t *stop, l3d_err *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/train_%s.%s", root, what, format);
    struct archive *a = archive_write_new();
    if (!a)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    int ok = !strcmp(format, "zip") ? archive_write_set_format_zip(a) == ARCHIVE_OK
                                    : archive_write_set_format_pax_restricted(a) == ARCHIVE_OK;
    /* no time stamp in the gzip header; fast deflate for the scans, whose float
     * noise compresses little at any level */
    int fast = !strcmp(what, "lidar");
    if (ok && !strcmp(format, "tar.gz"))
        ok = archive_write_add_filter_gzip(a) == ARCHIVE_OK &&
             archive_write_set_options(a, fast ? "gzip:!timestamp,gzip:compression-level=1"
                                               : "gzip:!timestamp") == ARCHIVE_OK;
    if (ok && fast && !strcmp(format, "zip"))
        ok = archive_write_set_options(a, "zip:compression-level=1") == ARCHIVE_OK;
    int rc = L3D_OK;
    if (!ok || archive_write_open_filename(a, path) != ARCHIVE_OK)
        rc = l3d_fail(err, L3D_EARCHIVE, "cannot create '%s': %s", path, archive_error_string(a));
    char member[512];
    if (!rc && !strcmp(what, "data")) {
        for (int t = 0; t < SYN_NTABLES && !rc; t++) {
            snprintf(member, sizeof member, "train_data/%s.json", syn_table_name(t));
            rc = add_member(a, root, member, err);
        }
    } else if (!rc && !strcmp(what, "maps")) {
        rc = add_member(a, root, "train_maps/" MAP_FILE, err);
    } else if (!rc) {
        for (uint32_t s = 0; s < d->n_samples && !rc; s++) {
            if (*stop)
                rc = l3d_fail(err, L3D_EINTERNAL, "interrupted");
            else if (!(d->samples[s].defects & SYN_DEFECT_MISSING)) {
                syn_lidar_filename(d, s, member, sizeof member);
                rc = add_member(a, root, member, err);
            }
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK && !rc)
        rc = l3d_fail(err, L3D_EARCHIVE, "cannot write '%s': %s", path, archive_error_string(a));
    archive_write_free(a);
    int fd = rc ? -1 : open(path, O_RDONLY);
    if (!rc && (fd < 0 || fdatasync(fd) != 0))
        rc = l3d_fail(err, L3D_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

int syn_pack(const syn_dataset *d, const char *root, const char *format,
             volatile sig_atomic_t *stop, l3d_err *err)
{
    /* zip stores DOS times in local time: pin the zone so output does not depend on it */
    setenv("TZ", "UTC0", 1);
    tzset();
    int rc = pack_one(d, root, "data", format, stop, err);
    if (!rc && !d->o.tables_only)
        rc = pack_one(d, root, "lidar", format, stop, err);
    if (!rc)
        rc = pack_one(d, root, "maps", format, stop, err);
    return rc;
}

/* ---- split files -------------------------------------------------------- */

int syn_write_split(const syn_dataset *d, const char *dir, l3d_err *err)
{
    if (mkdir_p(dir) != 0)
        return l3d_fail(err, L3D_EIO, "cannot create '%s': %s", dir, strerror(errno));
    for (int val = 0; val <= 1; val++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, val ? "val.txt" : "train.txt");
        l3d_atomic_file af;
        int rc = l3d_atomic_open(&af, path, err);
        if (rc)
            return rc;
        for (int i = 0; i < d->n_scenes; i++)
            if (d->scenes[i].val == val)
                fprintf(af.fp, "%s\n", d->scenes[i].name);
        if ((rc = l3d_atomic_commit(&af, err)))
            return rc;
    }
    return L3D_OK;
}
