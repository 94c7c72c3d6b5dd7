/* Training checkpoints: everything a run needs to continue bit-identically on
 * the CPU, in one binary file written atomically (formats/atomic_file: temp
 * file, fsync, rename, fsync of the directory).
 *
 * File DIR/ckpt-<step, 8+ digits>.l3d, little-endian:
 *   header (64 bytes): magic "L3DCKPT\0", u32 version (1), u32 section count,
 *     u64 file size, i64 step, 32 bytes zero
 *   section table: 64 bytes a section: name (32 bytes, NUL-padded), u64
 *     offset, u64 size, u64 checksum of the payload, u64 zero
 *   payloads, each starting on a 64-byte boundary, zero-padded
 *   trailer (16 bytes): "L3DEND\0\0", u64 checksum of every byte before it
 * Checksums are l3d_checksum (formats/h5cache.h) from L3D_CHECKSUM_INIT.
 *
 * Sections: "layout" and "bn_layout" (the arena tables: per tensor a 96-byte
 * name, u64 ndim, i64 shape[4], u64 offset, u64 numel), "params", "bn_stats",
 * "adam_m", "adam_v", "master" (fp16 mode only; float32 arrays of the whole
 * arenas), "adamw" (f64 beta1, beta2, eps, weight_decay, i64 step), "scaler"
 * (l3d_scaler_save image), "progress" (i64 step, epoch), and the caller's
 * byte strings "rng", "data_pos", "config" and "cache_hashes".
 *
 * A file is valid when it is complete (size as in the header), has the magic,
 * version 1, every section inside the file with its checksum right, the
 * whole-file checksum right, all required sections, and arena tables equal to
 * the caller's (same names, shapes and offsets). Loading validates everything
 * before it touches the caller's state, so a rejected file changes nothing. */
#ifndef LIDAR3D_TRAINER_CHECKPOINT_H
#define LIDAR3D_TRAINER_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "formats/error.h"
#include "trainer/loss_scaler.h"
#include "trainer/optim.h"
#include "trainer/params.h"

#define L3D_CKPT_VERSION 1

typedef struct l3d_ckpt {
    l3d_params *params;            /* the arena, allocated, its tables final */
    l3d_adamw *opt;
    l3d_loss_scaler *scaler;
    int64_t step, epoch;
    /* Byte strings. Saving borrows them (NULL = empty). Loading replaces the
     * pointers (without freeing what they held) by malloc'ed copies, the two
     * strings NUL-terminated; free them with l3d_ckpt_free_blobs. */
    uint8_t *rng;
    size_t rng_len;
    uint8_t *data_pos;
    size_t data_pos_len;
    char *config;                  /* the run's configuration text */
    char *cache_hashes;            /* e.g. "sweep=<hash>\nvoxel=<hash>\n" */
} l3d_ckpt;

void l3d_ckpt_free_blobs(l3d_ckpt *c);

/* Writes one checkpoint file at path (atomically). */
int l3d_ckpt_write(const char *path, const l3d_ckpt *c, l3d_err *err);
/* Reads and validates path; on success fills c (arena arrays, optimizer step,
 * scaler, step, epoch, blobs). When the file has no "master" section but the
 * arena has master weights (resuming an fp32/amp run in fp16 mode) they are
 * set from the weights; a "master" section the arena has no room for is
 * ignored. Errors: L3D_EIO (cannot read), L3D_EINPUT (corrupt, truncated,
 * wrong version), L3D_ESCHEMA (arena tables differ). */
int l3d_ckpt_read(const char *path, l3d_ckpt *c, l3d_err *err);

/* Writes DIR/ckpt-<c->step as %08lld>.l3d (creating DIR if missing, not its
 * parents), then deletes all but the `keep` newest checkpoints (by step;
 * keep <= 0 keeps all) and temporaries left in DIR by killed writers. The
 * written path goes to path_out when not NULL. */
int l3d_ckpt_save(const char *dir, int keep, const l3d_ckpt *c, char *path_out,
                  size_t path_len, l3d_err *err);

/* --resume auto: tries DIR's checkpoints newest first and loads the first
 * valid one. Each one skipped adds a line "skipped PATH: why" to warn.
 * Returns L3D_OK with its path in loaded (or loaded = "" when DIR holds no
 * checkpoint or does not exist: start from scratch); L3D_EINPUT when there
 * were checkpoints but none was valid. */
int l3d_ckpt_load_latest(const char *dir, l3d_ckpt *c, char *loaded, size_t loaded_len,
                         char *warn, size_t warn_len, l3d_err *err);

/* Steps of DIR's checkpoint files (names only, not validated), newest first,
 * malloc'ed (*steps may be NULL when *n is 0). */
int l3d_ckpt_list(const char *dir, int64_t **steps, int *n, l3d_err *err);

#endif
