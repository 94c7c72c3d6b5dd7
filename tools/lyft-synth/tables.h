/* The thirteen Lyft JSON tables of a synthetic dataset (train_data/), with
 * the field names and value shapes of the real ones (spec lyft-data.md §1.3). */
#ifndef LIDAR3D_SYNTH_TABLES_H
#define LIDAR3D_SYNTH_TABLES_H

#include <signal.h>

#include "formats/error.h"
#include "tools/lyft-synth/dataset.h"

#define SYN_NTABLES 13
/* Name of table t (0 <= t < SYN_NTABLES), in the order written. */
const char *syn_table_name(int t);

/* Writes dir/<table>.json for every table. Stops when *stop becomes nonzero. */
int syn_write_tables(const syn_dataset *d, const char *dir, volatile sig_atomic_t *stop,
                     l3d_err *err);

#endif
