#include "formats/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

int l3d_atomic_open(l3d_atomic_file *af, const char *path, l3d_err *err)
{
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path)
        return l3d_fail(err, L3D_EUSAGE, "%s: path too long", path);
    strcpy(af->path, path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp, "wb");
    if (!af->fp)
        return l3d_fail(err, L3D_EIO, "cannot create '%s': %s", af->tmp, strerror(errno));
    return L3D_OK;
}

static int fsync_dir_of(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int l3d_atomic_commit(l3d_atomic_file *af, l3d_err *err)
{
    if (!af->fp)
        return l3d_fail(err, L3D_EINTERNAL, "%s: commit without open", af->path);
    int bad = fflush(af->fp) != 0 || ferror(af->fp) || fsync(fileno(af->fp)) != 0;
    int saved = errno;
    if (fclose(af->fp) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    af->fp = NULL;
    if (bad) {
        unlink(af->tmp);
        return l3d_fail(err, L3D_EIO, "cannot write '%s': %s", af->path, strerror(saved));
    }
    if (rename(af->tmp, af->path) != 0) {
        saved = errno;
        unlink(af->tmp);
        return l3d_fail(err, L3D_EIO, "cannot rename '%s' to '%s': %s", af->tmp, af->path,
                        strerror(saved));
    }
    fsync_dir_of(af->path); /* best effort: some filesystems refuse directory fsync */
    return L3D_OK;
}

void l3d_atomic_abort(l3d_atomic_file *af)
{
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
    }
    if (af->tmp[0])
        unlink(af->tmp);
}
