// The C++ side of formats/numtext.h: a thin shim over double-conversion.
#include "formats/numtext.h"

#include <double-conversion/double-to-string.h>
#include <double-conversion/string-to-double.h>

using double_conversion::DoubleToStringConverter;
using double_conversion::StringBuilder;
using double_conversion::StringToDoubleConverter;

extern "C" int l3d_dtoa(double v, char buf[32])
{
    StringBuilder sb(buf, 32);
    DoubleToStringConverter::EcmaScriptConverter().ToShortest(v, &sb);
    int n = sb.position();
    sb.Finalize();
    return n;
}

extern "C" int l3d_strtod(const char *s, size_t n, double *out)
{
    static const StringToDoubleConverter conv(StringToDoubleConverter::NO_FLAGS, 0.0, 0.0,
                                              nullptr, nullptr);
    int used = 0;
    double v = conv.StringToDouble(s, (int)n, &used);
    if (used != (int)n || n == 0)
        return -1;
    *out = v;
    return 0;
}
