/* TensorBoard event files; the format is described in tblog.h. */
#include "trainer/tblog.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- CRC32C, one 256-entry table built on first use ---------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t l3d_crc32c(const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t l3d_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* ---- protobuf: the four encodings we need ------------------------------- */

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

size_t l3d_pb_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_le(uint8_t *p, uint64_t x, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

static uint8_t *put_key(uint8_t *p, int field, int wire)
{
    return p + l3d_pb_varint(p, (uint64_t)field << 3 | (uint64_t)wire);
}

static uint8_t *put_double(uint8_t *p, int field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    p = put_key(p, field, WIRE_FIXED64);
    put_le(p, bits, 8);
    return p + 8;
}

static uint8_t *put_float(uint8_t *p, int field, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    p = put_key(p, field, WIRE_FIXED32);
    put_le(p, bits, 4);
    return p + 4;
}

/* Key and length of a length-delimited field; the caller writes the body. */
static uint8_t *put_len(uint8_t *p, int field, size_t n)
{
    p = put_key(p, field, WIRE_LEN);
    return p + l3d_pb_varint(p, n);
}

/* ---- records --------------------------------------------------------------- */

static double wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int write_record(l3d_tblog *t, const uint8_t *data, size_t n, l3d_err *err)
{
    uint8_t head[12], foot[4];
    put_le(head, n, 8);
    put_le(head + 8, l3d_crc32c_mask(l3d_crc32c(head, 8)), 4);
    put_le(foot, l3d_crc32c_mask(l3d_crc32c(data, n)), 4);
    if (fwrite(head, 1, 12, t->f) != 12 || fwrite(data, 1, n, t->f) != n ||
        fwrite(foot, 1, 4, t->f) != 4)
        return l3d_fail(err, L3D_EIO, "%s: cannot write event: %s", t->path, strerror(errno));
    return L3D_OK;
}

static const char FILE_VERSION[] = "brain.Event:2";

int l3d_tblog_open(l3d_tblog *t, const char *dir, l3d_err *err)
{
    t->f = NULL;
    t->path[0] = '\0';
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    double now = wall_time();
    for (int n = 0; n < 1000 && !t->f; n++) {
        int len = snprintf(t->path, sizeof t->path, "%s/events.out.tfevents.%010lld.%s.%ld.%d",
                           dir, (long long)now, host, (long)getpid(), n);
        if (len < 0 || (size_t)len >= sizeof t->path)
            return l3d_fail(err, L3D_EIO, "%s: directory name too long for an event file", dir);
        t->f = fopen(t->path, "wbx");   /* x: never overwrite another run's file */
        if (!t->f && errno != EEXIST)
            return l3d_fail(err, L3D_EIO, "%s: cannot create event file: %s", t->path,
                            strerror(errno));
    }
    if (!t->f)
        return l3d_fail(err, L3D_EIO, "%s: cannot create event file: 1000 names taken", dir);

    uint8_t buf[64], *p = buf;
    p = put_double(p, 1, now);
    p = put_len(p, 3, sizeof FILE_VERSION - 1);
    memcpy(p, FILE_VERSION, sizeof FILE_VERSION - 1);
    p += sizeof FILE_VERSION - 1;
    int rc = write_record(t, buf, (size_t)(p - buf), err);
    if (rc == L3D_OK)
        rc = l3d_tblog_flush(t, err);
    if (rc != L3D_OK)
        l3d_tblog_close(t);
    return rc;
}

int l3d_tblog_scalar(l3d_tblog *t, int64_t step, const char *tag, float value, l3d_err *err)
{
    if (!t->f)
        return l3d_fail(err, L3D_EINTERNAL, "tblog: scalar '%s' written to a closed log", tag);
    size_t tag_n = strlen(tag);
    size_t value_n = 1 + varint_len(tag_n) + tag_n + 5;       /* Value */
    size_t summary_n = 1 + varint_len(value_n) + value_n;     /* Summary */
    size_t step_n = step ? 1 + varint_len((uint64_t)step) : 0;   /* proto3 omits 0 */
    size_t event_n = 9 + step_n + 1 + varint_len(summary_n) + summary_n;
    uint8_t *buf = malloc(event_n);
    if (!buf)
        return l3d_fail(err, L3D_EINTERNAL, "tblog: out of memory (%zu bytes)", event_n);
    uint8_t *p = buf;
    p = put_double(p, 1, wall_time());
    if (step) {
        p = put_key(p, 2, WIRE_VARINT);
        p += l3d_pb_varint(p, (uint64_t)step);
    }
    p = put_len(p, 5, summary_n);
    p = put_len(p, 1, value_n);
    p = put_len(p, 1, tag_n);
    memcpy(p, tag, tag_n);
    p = put_float(p + tag_n, 2, value);
    int rc = (size_t)(p - buf) == event_n
                 ? write_record(t, buf, event_n, err)
                 : l3d_fail(err, L3D_EINTERNAL, "tblog: event size %zu, expected %zu",
                            (size_t)(p - buf), event_n);
    free(buf);
    return rc;
}

int l3d_tblog_flush(l3d_tblog *t, l3d_err *err)
{
    if (!t->f)
        return L3D_OK;
    errno = 0;
    if (fflush(t->f) != 0 || ferror(t->f))   /* ferror: an earlier write failed */
        return l3d_fail(err, L3D_EIO, "%s: cannot write events: %s", t->path,
                        errno ? strerror(errno) : "earlier write failed");
    return L3D_OK;
}

void l3d_tblog_close(l3d_tblog *t)
{
    if (t->f)
        fclose(t->f);
    t->f = NULL;
}
