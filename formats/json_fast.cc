#include "formats/json_fast.h"

#include "formats/numtext.h"

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace od = simdjson::ondemand;
using simdjson::SUCCESS;

static_assert(L3D_JSON_FAST_PADDING >= simdjson::SIMDJSON_PADDING, "padding too small");

struct l3d_json_fast {
    od::parser parser;
    /* Keys and strings of the record being built, unescaped straight from
     * the input and NUL-terminated. Unescaped text and its NUL are shorter
     * than the quoted input, so input length plus the parser's padding is
     * room enough for any record. */
    uint8_t *text = nullptr;
    size_t text_cap = 0;
    uint8_t *at = nullptr;
    l3d_record rec;
};

l3d_json_fast *l3d_json_fast_new(void)
{
    return new (std::nothrow) l3d_json_fast();
}

void l3d_json_fast_free(l3d_json_fast *p)
{
    if (p)
        std::free(p->text);
    delete p;
}

static const char *keep(l3d_json_fast *p, od::raw_json_string raw, size_t *len)
{
    std::string_view s;
    if (p->parser.unescape(raw, p->at).get(s) != SUCCESS)
        return nullptr;
    *p->at++ = 0;
    *len = s.size();
    return s.data();
}

/* A number's value. simdjson 3.0.1 (Debian 12's) computes a wrong value
 * for some numbers of more than 19 digits (its issue #2093: "0.95" followed
 * by 18 zeros gives 0.0277), so those are parsed again as
 * formats/json_records.c parses every number, simdjson having checked the
 * grammar. Python writes at most 17 significant digits, so that is rare,
 * and a token of fewer than 20 bytes cannot hold 20 digits: most numbers
 * are not even counted. */
static bool number(od::value v, double *out)
{
    if (v.get_double().get(*out) != SUCCESS)
        return false;
    std::string_view raw = v.raw_json_token();   /* up to the next token */
    if (raw.size() < 20)
        return true;
    size_t n = 0, digits = 0;
    for (; n < raw.size(); n++) {
        char c = raw[n];
        if (c >= '0' && c <= '9')
            digits++;
        else if (c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E')
            break;
    }
    return digits <= 19 || l3d_strtod(raw.data(), n, out) == 0;
}

/* Visits every part of a value not kept in the record, so that what yajl
 * would refuse is refused here too (skipping would only match brackets). */
static bool validate(od::value v)
{
    od::json_type t;
    if (v.type().get(t) != SUCCESS)
        return false;
    switch (t) {
    case od::json_type::object: {
        od::object o;
        if (v.get_object().get(o) != SUCCESS)
            return false;
        for (auto fr : o) {
            od::field f;
            std::string_view key;
            if (std::move(fr).get(f) != SUCCESS || f.unescaped_key().get(key) != SUCCESS ||
                !validate(f.value()))
                return false;
        }
        return true;
    }
    case od::json_type::array: {
        od::array a;
        if (v.get_array().get(a) != SUCCESS)
            return false;
        for (auto er : a) {
            od::value e;
            if (er.get(e) != SUCCESS || !validate(e))
                return false;
        }
        return true;
    }
    case od::json_type::string: {
        std::string_view s;
        return v.get_string().get(s) == SUCCESS;
    }
    case od::json_type::number: {
        double d;
        return number(v, &d);
    }
    case od::json_type::boolean: {
        bool b;
        return v.get_bool().get(b) == SUCCESS;
    }
    case od::json_type::null: {
        bool null;
        return v.is_null().get(null) == SUCCESS && null;
    }
    }
    return false;
}

/* A field's array: numbers up to L3D_REC_MAX_NUMS are kept, anything else
 * makes it L3D_JOTHER (as formats/json_records.c does). */
static bool fill_array(od::value v, l3d_jfield *f)
{
    od::array a;
    if (v.get_array().get(a) != SUCCESS)
        return false;
    f->kind = L3D_JNUMARR;
    for (auto er : a) {
        od::value e;
        od::json_type t;
        if (er.get(e) != SUCCESS || e.type().get(t) != SUCCESS)
            return false;
        if (f->kind == L3D_JNUMARR && t == od::json_type::number &&
            f->n_nums < L3D_REC_MAX_NUMS) {
            if (!number(e, &f->nums[f->n_nums]))
                return false;
            f->n_nums++;
            continue;
        }
        f->kind = L3D_JOTHER;
        if (!validate(e))
            return false;
    }
    return true;
}

static bool fill_field(l3d_json_fast *p, l3d_jfield *f, od::value v)
{
    od::json_type t;
    if (v.type().get(t) != SUCCESS)
        return false;
    switch (t) {
    case od::json_type::number:
        f->kind = L3D_JNUM;
        return number(v, &f->num);
    case od::json_type::string: {
        od::raw_json_string raw;
        if (v.get_raw_json_string().get(raw) != SUCCESS)
            return false;
        f->kind = L3D_JSTR;
        return (f->str = keep(p, raw, &f->len)) != nullptr;
    }
    case od::json_type::boolean: {
        bool b;
        if (v.get_bool().get(b) != SUCCESS)
            return false;
        f->kind = L3D_JBOOL;
        f->boolean = b;
        return true;
    }
    case od::json_type::null: {
        bool null;
        f->kind = L3D_JNULL;
        return v.is_null().get(null) == SUCCESS && null;
    }
    case od::json_type::array:
        return fill_array(v, f);
    case od::json_type::object:
        f->kind = L3D_JOTHER;
        return validate(v);
    }
    return false;
}

static bool fill_record(l3d_json_fast *p, od::object o)
{
    p->rec.n = 0;
    p->at = p->text;
    for (auto fr : o) {
        od::field field;
        if (std::move(fr).get(field) != SUCCESS || p->rec.n >= L3D_REC_MAX_FIELDS)
            return false;
        l3d_jfield *f = &p->rec.f[p->rec.n++];
        l3d_jfield_clear(f);
        size_t key_len;
        if (!(f->key = keep(p, field.key(), &key_len)) || !fill_field(p, f, field.value()))
            return false;
    }
    return true;
}

int l3d_json_fast_parse(l3d_json_fast *p, const char *buf, size_t len, const char *file,
                        l3d_record_fn fn, void *ctx, long *n_records, l3d_err *err)
{
    *n_records = 0;
    if (len + L3D_JSON_FAST_PADDING > p->text_cap) {
        std::free(p->text);
        p->text_cap = len + L3D_JSON_FAST_PADDING;
        if (!(p->text = static_cast<uint8_t *>(std::malloc(p->text_cap)))) {
            p->text_cap = 0;
            return L3D_EINTERNAL;
        }
    }
    od::document doc;
    od::array records;
    if (p->parser.iterate(buf, len, len + L3D_JSON_FAST_PADDING).get(doc) != SUCCESS ||
        doc.get_array().get(records) != SUCCESS)
        return L3D_EJSON;
    p->rec.file = file;
    p->rec.line = -1;
    for (auto er : records) {
        od::value v;
        od::object o;
        if (er.get(v) != SUCCESS || v.get_object().get(o) != SUCCESS || !fill_record(p, o))
            return L3D_EJSON;
        p->rec.index = (*n_records)++;
        int rc = fn(ctx, &p->rec, err);
        if (rc != L3D_OK)
            return rc;
    }
    /* the array must be all there is: at the end, the parser is out of
     * tokens (a ']' closing it early would leave some) */
    const char *at;
    return doc.current_location().get(at) == simdjson::OUT_OF_BOUNDS ? L3D_OK : L3D_EJSON;
}
