/* Number <-> text for JSON, through Google's double-conversion library
 * (libdouble-conversion): the shortest text that reads back to the same
 * double, and correctly rounded parsing, several times faster than glibc's
 * printf/strtod loops that dominated lyft-index's profile. */
#ifndef LIDAR3D_FORMATS_NUMTEXT_H
#define LIDAR3D_FORMATS_NUMTEXT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the shortest round-trip text of a finite v ("0.2", "1e-7",
 * "1556675185903083.2") into buf (32 bytes suffice); returns its length. */
int l3d_dtoa(double v, char buf[32]);

/* Parses exactly n bytes of JSON number text; returns 0 and *out, or -1 if
 * the text is not entirely a number. Overflow gives ±inf. */
int l3d_strtod(const char *s, size_t n, double *out);

#ifdef __cplusplus
}
#endif

#endif
