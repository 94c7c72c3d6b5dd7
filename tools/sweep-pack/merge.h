/* sweep-pack --merge: several shard caches -> one cache, in the order given. */
#ifndef LIDAR3D_TOOLS_SWEEP_PACK_MERGE_H
#define LIDAR3D_TOOLS_SWEEP_PACK_MERGE_H

#include "formats/error.h"

int merge_caches(char **inputs, int n, const char *output, const char *command, l3d_err *err);

#endif
