// The least a JSON table can cost to read with the parser lyft-index uses:
// simdjson's on-demand parser walking every value of each file (numbers
// converted, strings unescaped, nothing kept), one thread, the file already
// in memory. lyft-index cannot read the tables in less CPU time than this
// sum, so it bounds what any change to formats/ can win (docs/benchmarks.md).
//
//   build/bench/parse_floor FILE.json...   prints CPU seconds per file and in all
#include <simdjson.h>

#include <cstdio>
#include <ctime>

namespace od = simdjson::ondemand;

static double cpu_seconds()
{
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct totals { double sum = 0; size_t bytes = 0; };

static bool walk(od::value v, totals &t)
{
    od::json_type type;
    if (v.type().get(type))
        return false;
    switch (type) {
    case od::json_type::number: {
        double d;
        if (v.get_double().get(d))
            return false;
        t.sum += d;
        return true;
    }
    case od::json_type::string: {
        std::string_view s;
        if (v.get_string().get(s))
            return false;
        t.bytes += s.size();
        return true;
    }
    case od::json_type::array: {
        od::array a;
        if (v.get_array().get(a))
            return false;
        for (auto er : a) {
            od::value e;
            if (er.get(e) || !walk(e, t))
                return false;
        }
        return true;
    }
    case od::json_type::object: {
        od::object o;
        if (v.get_object().get(o))
            return false;
        for (auto fr : o) {
            od::field f;
            std::string_view key;
            if (std::move(fr).get(f) || f.unescaped_key().get(key) || !walk(f.value(), t))
                return false;
            t.bytes += key.size();
        }
        return true;
    }
    case od::json_type::boolean: {
        bool b;
        return !v.get_bool().get(b);
    }
    case od::json_type::null: {
        bool null;
        return !v.is_null().get(null) && null;
    }
    }
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: parse_floor FILE.json...\n");
        return 2;
    }
    double all = 0;
    for (int i = 1; i < argc; i++) {
        simdjson::padded_string text;
        if (simdjson::padded_string::load(argv[i]).get(text)) {
            std::fprintf(stderr, "parse_floor: cannot read %s\n", argv[i]);
            return 1;
        }
        od::parser parser;
        totals t;
        double t0 = cpu_seconds();
        od::document doc;
        od::array records;
        bool ok = !parser.iterate(text).get(doc) && !doc.get_array().get(records);
        for (auto rr : records) {
            od::value r;
            if (!ok || rr.get(r) || !walk(r, t)) {
                ok = false;
                break;
            }
        }
        double s = cpu_seconds() - t0;
        if (!ok) {
            std::fprintf(stderr, "parse_floor: %s is not a JSON array simdjson accepts\n", argv[i]);
            return 1;
        }
        all += s;
        std::printf("%s: %.3f s CPU (%.0f MB/s)\n", argv[i], s, (double)text.size() / s / 1e6);
    }
    std::printf("all: %.3f s CPU\n", all);
    return 0;
}
