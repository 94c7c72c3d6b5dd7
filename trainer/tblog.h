/* TensorBoard event files, written by hand (no C library exists).
 *
 * File: DIR/events.out.tfevents.<unix time, %010d>.<hostname>.<pid>.<n>, n = 0
 * unless that name is already taken (then 1, 2, ...; the file is opened with
 * O_EXCL so a run never overwrites another). DIR must exist.
 *
 * The file is a sequence of TFRecords, each:
 *   uint64 length (little-endian), uint32 masked_crc32c(the 8 length bytes),
 *   data[length], uint32 masked_crc32c(data)            (all little-endian)
 * with masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8, c = CRC32C(x)
 * (Castagnoli, reflected polynomial 0x82F63B78, init and final xor ~0).
 *
 * Each record's data is one tensorflow.Event protobuf; only these fields are
 * written (tensorflow/core/util/event.proto, summary.proto):
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
 *             Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 * The first record is { wall_time, file_version: "brain.Event:2" }; every
 * scalar is { wall_time, step, summary { value { tag, simple_value } } }.
 * The encoding is protobuf's canonical one, as TensorFlow's own writer gives:
 * fields in field-number order, step left out when 0 (proto3's default);
 * simple_value is always present (it is a member of a oneof).
 *
 * Errors: L3D_EIO naming the file (or DIR) and the system's reason. stdio
 * buffers the records: a failed write may only show at l3d_tblog_flush. */
#ifndef LIDAR3D_TRAINER_TBLOG_H
#define LIDAR3D_TRAINER_TBLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "formats/error.h"

typedef struct l3d_tblog {
    FILE *f;          /* NULL when closed */
    char path[4096];  /* the event file */
} l3d_tblog;

/* Creates the event file in dir and writes the file_version event. */
int l3d_tblog_open(l3d_tblog *t, const char *dir, l3d_err *err);
/* Appends one scalar event, wall_time = now. tag: UTF-8, any length. */
int l3d_tblog_scalar(l3d_tblog *t, int64_t step, const char *tag, float value, l3d_err *err);
/* Pushes buffered records to the file (fflush). */
int l3d_tblog_flush(l3d_tblog *t, l3d_err *err);
/* Flushes and closes; errors are lost, so flush first when they matter.
 * Safe on a closed or zeroed l3d_tblog. */
void l3d_tblog_close(l3d_tblog *t);

/* ---- the pieces, exposed for tests ---------------------------------------- */

/* CRC32C of data[0..n) (e.g. "123456789" -> 0xE3069283). */
uint32_t l3d_crc32c(const void *data, size_t n);
/* TFRecord's mask of a CRC. */
uint32_t l3d_crc32c_mask(uint32_t crc);
/* Protobuf base-128 varint of v into out (at least 10 bytes); returns the
 * byte count (1..10). An int64 is encoded as (uint64_t)value. */
size_t l3d_pb_varint(uint8_t *out, uint64_t v);

#endif
