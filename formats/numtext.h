/* Number <-> text for JSON: shortest digits from fmt's Dragonbox, parsing
 * through C++17 <charconv> (libstdc++'s fast_float): the shortest text that
 * reads back to the same double, laid out as ECMAScript does, and correctly
 * rounded parsing; several times faster than glibc's printf/strtod loops
 * that dominated lyft-index's profile, and than the double-conversion
 * library used before. */
#ifndef LIDAR3D_FORMATS_NUMTEXT_H
#define LIDAR3D_FORMATS_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes l3d_dtoa may write: the text is at most 25 bytes and its NUL, but
 * it is written in fixed-size pieces that may run past the NUL. */
#define L3D_DTOA_ROOM 48

/* Writes the shortest round-trip text of a finite v ("0.2", "1e-7",
 * "1e+21", "1556675185903083.2", "2"; -0 gives "0") and a NUL into buf,
 * which must have L3D_DTOA_ROOM bytes; returns its length. */
int l3d_dtoa(double v, char buf[L3D_DTOA_ROOM]);

/* Writes v in decimal, as printf's "%lld" does, into buf (21 bytes
 * suffice); returns its length. */
int l3d_itoa(int64_t v, char buf[24]);

/* Parses exactly n bytes of JSON number text; returns 0 and *out, or -1 if
 * the text is not entirely a number. Overflow gives ±inf. */
int l3d_strtod(const char *s, size_t n, double *out);

#ifdef __cplusplus
}
#endif

#endif
