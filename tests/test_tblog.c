/* trainer/tblog: CRC32C on published vectors, varints on hand-worked values,
 * and event files read back byte by byte: the TFRecord framing is checked
 * with a bitwise CRC32C written here (not the library's table) and every
 * protobuf field is decoded by a small decoder written here. The official
 * reader's check is tests/ref/tensorboard_check.py (outside make check). */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/support/testutil.h"
#include "trainer/tblog.h"

static uint32_t bit_crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++) {
            uint32_t bit = (c ^ (uint32_t)(p[i] >> k)) & 1;
            c = (c >> 1) ^ (bit ? 0x82F63B78u : 0);
        }
    return ~c;
}

static uint32_t ref_mask(uint32_t c)
{
    return (uint32_t)(((c >> 15) | (c << 17)) + 0xa282ead8u);
}

static void test_crc32c_vectors(void **state)
{
    (void)state;
    uint8_t zero[32] = {0}, ones[32], up[32], down[32];
    for (int i = 0; i < 32; i++) {
        ones[i] = 0xFF;
        up[i] = (uint8_t)i;
        down[i] = (uint8_t)(31 - i);
    }
    /* RFC 3720 B.4 and the usual check value */
    assert_int_equal(l3d_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(l3d_crc32c(zero, 32), 0x8A9136AAu);
    assert_int_equal(l3d_crc32c(ones, 32), 0x62A8AB43u);
    assert_int_equal(l3d_crc32c(up, 32), 0x46DD794Eu);
    assert_int_equal(l3d_crc32c(down, 32), 0x113FDB5Cu);
    assert_int_equal(l3d_crc32c("", 0), 0u);
    assert_int_equal(bit_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof buf; n += 13)
        assert_int_equal(l3d_crc32c(buf, n), bit_crc32c(buf, n));
    assert_int_equal(l3d_crc32c_mask(0xE3069283u), ref_mask(0xE3069283u));
    assert_int_equal(l3d_crc32c_mask(0), 0xa282ead8u);
}

static void test_varint(void **state)
{
    (void)state;
    static const struct { uint64_t v; int n; uint8_t b[10]; } cases[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {127, 1, {0x7F}},
        {128, 2, {0x80, 0x01}},
        {150, 2, {0x96, 0x01}},          /* the protobuf docs' example */
        {300, 2, {0xAC, 0x02}},
        {16383, 2, {0xFF, 0x7F}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {1ull << 40, 6, {0x80, 0x80, 0x80, 0x80, 0x80, 0x20}},
        {UINT64_MAX, 10, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}},
        {(uint64_t)(int64_t)-2, 10, {0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[12];
        memset(out, 0xAA, sizeof out);
        assert_int_equal(l3d_pb_varint(out, cases[i].v), cases[i].n);
        assert_memory_equal(out, cases[i].b, (size_t)cases[i].n);
        assert_int_equal(out[cases[i].n], 0xAA);   /* nothing written past the end */
    }
}

/* ---- an independent reader ------------------------------------------------ */

typedef struct rd { const uint8_t *p, *end; } rd;

static uint64_t rd_le(rd *r, int bytes)
{
    assert_true(r->end - r->p >= bytes);
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++)
        x |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    return x;
}

static uint64_t rd_varint(rd *r)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        assert_true(r->p < r->end);
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return x;
    }
    fail_msg("varint longer than 10 bytes");
    return 0;
}

static rd rd_sub(rd *r)
{
    uint64_t n = rd_varint(r);
    assert_true(n <= (uint64_t)(r->end - r->p));
    rd s = {r->p, r->p + n};
    r->p += n;
    return s;
}

typedef struct event {
    int has_time, has_step, has_version, has_value, n_values;
    double wall_time;
    int64_t step;
    char version[64], tag[512];
    float value;
} event;

static void copy_str(rd s, char *out, size_t cap)
{
    size_t n = (size_t)(s.end - s.p);
    assert_true(n < cap);
    memcpy(out, s.p, n);
    out[n] = '\0';
}

/* Reads one TFRecord at r and decodes its Event (only the fields tblog writes). */
static void read_event(rd *r, event *e)
{
    memset(e, 0, sizeof *e);
    const uint8_t *head = r->p;
    uint64_t len = rd_le(r, 8);
    assert_int_equal(rd_le(r, 4), ref_mask(bit_crc32c(head, 8)));
    assert_true(len <= (uint64_t)(r->end - r->p));
    rd d = {r->p, r->p + len};
    r->p += len;
    assert_int_equal(rd_le(r, 4), ref_mask(bit_crc32c(d.p, len)));
    while (d.p < d.end) {
        uint64_t key = rd_varint(&d), bits;
        if (key == (1 << 3 | 1)) {                       /* wall_time: fixed64 double */
            bits = rd_le(&d, 8);
            memcpy(&e->wall_time, &bits, 8);
            e->has_time = 1;
        } else if (key == (2 << 3 | 0)) {                /* step: varint */
            e->step = (int64_t)rd_varint(&d);
            e->has_step = 1;
        } else if (key == (3 << 3 | 2)) {                /* file_version: string */
            copy_str(rd_sub(&d), e->version, sizeof e->version);
            e->has_version = 1;
        } else if (key == (5 << 3 | 2)) {                /* summary: repeated value */
            for (rd s = rd_sub(&d); s.p < s.end; e->n_values++) {
                assert_int_equal(rd_varint(&s), 1 << 3 | 2);
                for (rd v = rd_sub(&s); v.p < v.end;) {
                    key = rd_varint(&v);
                    if (key == (1 << 3 | 2)) {           /* tag: string */
                        copy_str(rd_sub(&v), e->tag, sizeof e->tag);
                    } else if (key == (2 << 3 | 5)) {    /* simple_value: fixed32 float */
                        uint32_t b32 = (uint32_t)rd_le(&v, 4);
                        memcpy(&e->value, &b32, 4);
                        e->has_value = 1;
                    } else
                        fail_msg("Value: unexpected key %llu", (unsigned long long)key);
                }
            }
        } else
            fail_msg("Event: unexpected key %llu", (unsigned long long)key);
    }
}

/* The only file in dir, read whole; its name in name. */
static uint8_t *only_file(const char *dir, char *name, size_t *len)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.') {
            snprintf(name, 256, "%s", de->d_name);
            count++;
        }
    closedir(d);
    assert_int_equal(count, 1);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return (uint8_t *)tu_read_file(path, len);
}

static void test_scalar_records(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("tblog");
    char long_tag[301];
    for (int i = 0; i < 300; i++)
        long_tag[i] = (char)('a' + i % 26);
    long_tag[300] = '\0';
    double t0 = (double)time(NULL);
    l3d_tblog t;
    l3d_err err = {0};
    assert_int_equal(l3d_tblog_open(&t, dir, &err), L3D_OK);
    assert_int_equal(l3d_tblog_scalar(&t, 42, "loss/total", 0.25f, &err), L3D_OK);
    assert_int_equal(l3d_tblog_scalar(&t, 1ll << 40, long_tag, -3.5e-7f, &err), L3D_OK);
    assert_int_equal(l3d_tblog_scalar(&t, 0, "lr", 1e-3f, &err), L3D_OK);
    assert_int_equal(l3d_tblog_scalar(&t, -5, "lr", 0.0f, &err), L3D_OK);
    assert_int_equal(l3d_tblog_flush(&t, &err), L3D_OK);
    l3d_tblog_close(&t);
    l3d_tblog_close(&t);   /* twice is harmless */
    double t1 = (double)time(NULL) + 1;

    char name[256], host[256] = "", want[600];
    size_t len;
    uint8_t *b = only_file(dir, name, &len);
    gethostname(host, sizeof host - 1);
    int name_ok = 0;
    for (long long s = (long long)t0; s < (long long)t1; s++) {
        snprintf(want, sizeof want, "events.out.tfevents.%010lld.%s.%ld.0", s, host, (long)getpid());
        name_ok |= strcmp(name, want) == 0;
    }
    assert_true(name_ok);
    assert_true(strstr(t.path, name) != NULL);

    rd r = {b, b + len};
    event e;
    read_event(&r, &e);   /* file_version record: exactly 9 + 15 bytes of data */
    assert_int_equal(b[0], 24);
    assert_true(e.has_time && e.has_version && !e.has_step && e.n_values == 0);
    assert_string_equal(e.version, "brain.Event:2");
    assert_true(e.wall_time >= t0 && e.wall_time <= t1);
    double first = e.wall_time;

    read_event(&r, &e);
    assert_true(e.has_time && e.has_step && !e.has_version && e.n_values == 1 && e.has_value);
    assert_true(e.wall_time >= first && e.wall_time <= t1);
    assert_int_equal(e.step, 42);
    assert_string_equal(e.tag, "loss/total");
    assert_true(e.value == 0.25f);

    read_event(&r, &e);   /* tag length 300: a two-byte varint, as is the Value's */
    assert_int_equal(e.step, 1ll << 40);
    assert_string_equal(e.tag, long_tag);
    assert_true(e.value == -3.5e-7f);

    read_event(&r, &e);   /* step 0 is proto3's default: left out */
    assert_true(e.has_time && !e.has_step && e.n_values == 1);
    assert_string_equal(e.tag, "lr");
    assert_true(e.value == 1e-3f);

    read_event(&r, &e);   /* negative step: ten-byte varint; 0.0 still written (oneof) */
    assert_true(e.has_step && e.step == -5 && e.n_values == 1 && e.has_value);
    assert_true(e.value == 0.0f && !signbit(e.value));
    assert_ptr_equal(r.p, r.end);   /* nothing after the last record */
    free(b);
}

static void test_two_logs_same_dir(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("tblog-two");
    l3d_tblog a, b;
    assert_int_equal(l3d_tblog_open(&a, dir, NULL), L3D_OK);
    assert_int_equal(l3d_tblog_open(&b, dir, NULL), L3D_OK);
    assert_string_not_equal(a.path, b.path);   /* never overwrites */
    l3d_tblog_close(&a);
    l3d_tblog_close(&b);
}

static void test_errors(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("tblog-err");
    char file[4096], bad[4200];
    snprintf(file, sizeof file, "%s/plain", dir);
    tu_write_file(file, "x");
    snprintf(bad, sizeof bad, "%s/sub", file);   /* a directory under a file: works as root too */
    l3d_tblog t;
    l3d_err err = {0};
    assert_int_equal(l3d_tblog_open(&t, bad, &err), L3D_EIO);
    assert_int_equal(err.code, L3D_EIO);
    assert_non_null(strstr(err.msg, bad));
    assert_null(t.f);
    assert_int_equal(l3d_tblog_scalar(&t, 1, "x", 1, &err), L3D_EINTERNAL);
    l3d_tblog_close(&t);

    /* a failing write shows at the latest on flush, naming the file */
    FILE *full = fopen("/dev/full", "wb");
    if (!full)
        return;
    assert_int_equal(l3d_tblog_open(&t, dir, &err), L3D_OK);
    fclose(t.f);
    t.f = full;
    for (int i = 0; i < 1000; i++)   /* more than a stdio buffer */
        if (l3d_tblog_scalar(&t, i, "loss", 1, &err) != L3D_OK)
            break;
    err.code = 0;
    assert_int_equal(l3d_tblog_flush(&t, &err), L3D_EIO);
    assert_non_null(strstr(err.msg, "events.out.tfevents."));
    l3d_tblog_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_scalar_records),
        cmocka_unit_test(test_two_logs_same_dir),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
