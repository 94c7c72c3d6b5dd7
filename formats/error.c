#include "formats/error.h"

#include <stdio.h>

int l3d_fail(l3d_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *l3d_code_name(int code)
{
    switch (code) {
    case L3D_OK: return "ok";
    case L3D_EINTERNAL: return "internal";
    case L3D_EUSAGE: return "usage";
    case L3D_EIO: return "io";
    case L3D_EJSON: return "json";
    case L3D_ESCHEMA: return "schema";
    case L3D_EMISSING_TABLE: return "missing-table";
    case L3D_EDANGLING: return "dangling-token";
    case L3D_EMISSING_LIDAR: return "missing-lidar";
    case L3D_EARCHIVE: return "archive";
    case L3D_ENONFINITE: return "non-finite";
    case L3D_ECATEGORY: return "unknown-category";
    case L3D_EINPUT: return "input";
    }
    return "unknown";
}
