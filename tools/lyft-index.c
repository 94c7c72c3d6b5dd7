/* lyft-index: Lyft tables + LiDAR files -> one JSON line per sample.
 * The work is done by formats/; this file is options, policy and messages. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "formats/atomic_file.h"
#include "formats/bg_writer.h"
#include "formats/line_pool.h"
#include "formats/lyft_index.h"
#include "tools/common/cli.h"

static const char usage[] =
    "usage: lyft-index [OPTIONS] SOURCE... > index.jsonl\n"
    "\n"
    "Reads a Lyft Level 5 dataset (a folder in the Kaggle or MMDetection3D layout, or the\n"
    "distributed .zip/.tar/.tar.gz archives, unextracted) and writes one JSON line per\n"
    "sample: key-frame LiDAR, its sweeps with transforms, GT boxes. See docs/tools.md.\n"
    "\n"
    "  --sweeps N             previous LiDAR frames per sample, 0-10 (default 10)\n"
    "  --split NAME           train, val, test or all (default all)\n"
    "  --split-file FILE      scene names of that split, one per line (MMDetection3D's\n"
    "                         data/lyft/train.txt, val.txt, test.txt)\n"
    "  --channel NAME         LiDAR channel (default LIDAR_TOP)\n"
    "  --missing-lidar POLICY error (default): stop; skip: leave the sample out;\n"
    "                         keep: write it with \"lidar_missing\": true\n"
    "  --verify-lidar         read every .bin and count non-finite floats\n"
    "  -o, --output FILE      write here (atomically) instead of standard output\n"
    "  -q, --quiet            no summary line\n"
    "  -h, --help             this text\n"
    "      --version          version\n"
    "\n"
    "Exit codes: 0 ok, 2 usage, 3 I/O, 4 malformed JSON, 5 schema, 6 missing table,\n"
    "7 dangling token, 8 missing LiDAR file, 9 damaged archive, 10 non-finite value,\n"
    "11 unknown category, 12 other bad input.\n";

enum { MISSING_ERROR, MISSING_SKIP, MISSING_KEEP };

typedef struct options {
    int sweeps, missing, verify, quiet;
    const char *split, *split_file, *channel, *output;
    char **sources;
    int n_sources;
} options;

static void parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"sweeps", required_argument, 0, 's'}, {"split", required_argument, 0, 'S'},
        {"split-file", required_argument, 0, 'F'}, {"channel", required_argument, 0, 'c'},
        {"missing-lidar", required_argument, 0, 'm'}, {"verify-lidar", no_argument, 0, 'V'},
        {"output", required_argument, 0, 'o'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'v'}, {0, 0, 0, 0},
    };
    *o = (options){.sweeps = 10, .split = "all", .channel = "LIDAR_TOP"};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's':
            o->sweeps = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || o->sweeps < 0 || o->sweeps > 10)
                l3d_die(L3D_EUSAGE, "--sweeps '%s': expected a number from 0 to 10", optarg);
            break;
        case 'S': o->split = optarg; break;
        case 'F': o->split_file = optarg; break;
        case 'c': o->channel = optarg; break;
        case 'm':
            if (!strcmp(optarg, "error")) o->missing = MISSING_ERROR;
            else if (!strcmp(optarg, "skip")) o->missing = MISSING_SKIP;
            else if (!strcmp(optarg, "keep")) o->missing = MISSING_KEEP;
            else l3d_die(L3D_EUSAGE, "--missing-lidar '%s': expected error, skip or keep", optarg);
            break;
        case 'V': o->verify = 1; break;
        case 'o': o->output = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(usage, stdout); exit(0);
        case 'v': printf("lyft-index %s\n", LIDAR3D_VERSION); exit(0);
        default:
            l3d_die(L3D_EUSAGE, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (strcmp(o->split, "train") && strcmp(o->split, "val") && strcmp(o->split, "test") &&
        strcmp(o->split, "all"))
        l3d_die(L3D_EUSAGE, "--split '%s': expected train, val, test or all", o->split);
    if (strcmp(o->split, "all") && !o->split_file)
        l3d_die(L3D_EUSAGE, "--split %s needs --split-file FILE (the scene names of that split)",
                o->split);
    if (!strcmp(o->split, "all") && o->split_file)
        l3d_die(L3D_EUSAGE, "--split-file needs --split train, val or test");
    if (optind >= argc)
        l3d_die(L3D_EUSAGE, "no dataset SOURCE given (see --help)");
    o->sources = argv + optind;
    o->n_sources = argc - optind;
}

/* Marks the scenes named in the split file; reports names the tables lack. */
static unsigned char *read_split(const l3d_tables *t, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        l3d_die(L3D_EIO, "split file '%s': %m", path);
    unsigned char *keep = calloc((size_t)t->scene.n + 1, 1);
    l3d_strmap names;
    l3d_strmap_init(&names);
    for (uint32_t i = 0; i < t->scene.n; i++)
        if (!keep || !l3d_strmap_put(&names, l3d_str(t, t->scene.rows[i].name), i + 1))
            l3d_die(L3D_EINTERNAL, "out of memory");
    char buf[1024];
    long lineno = 0, listed = 0, unknown = 0;
    while (fgets(buf, sizeof buf, fp)) {
        lineno++;
        char *s = buf, *e = buf + strlen(buf);
        while (*s == ' ' || *s == '\t') s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (!*s || *s == '#')
            continue;
        listed++;
        size_t row = l3d_strmap_get(&names, s);
        if (row)
            keep[row - 1] = 1;
        else if (unknown++ < 3)
            l3d_warn("%s: line %ld: scene '%s' is not in the tables; ignored", path, lineno, s);
    }
    fclose(fp);
    l3d_strmap_free(&names);
    if (!listed)
        l3d_die(L3D_EINPUT, "split file '%s' lists no scene names", path);
    if (unknown)
        l3d_warn("%s: %ld of %ld listed scenes are not in the tables (ignored, as MMDetection3D "
                 "does)", path, unknown, listed);
    return keep;
}

typedef struct counts {
    long written, boxes, skipped_missing, kept_missing, corrupt, nonfinite_files;
    long sweeps, sweeps_missing;
    l3d_strmap warned;   /* corrupt files already reported */
} counts;

/* Reports each defective file once, however many samples use it. */
static void check_file(counts *c, const char *root, const l3d_lidar_file *f)
{
    if (f->num_points < 0 || (!f->tail_bytes && f->nonfinite <= 0))
        return;
    if (l3d_strmap_get(&c->warned, f->path))
        return;
    char *key = strdup(f->path);
    if (!key || !l3d_strmap_put(&c->warned, key, 1))
        l3d_die(L3D_EINTERNAL, "out of memory");
    if (f->tail_bytes) {
        c->corrupt++;
        l3d_warn("%s/%s: size is not a multiple of 20 bytes (%lld stray bytes); using the first "
                 "%lld whole points",
                 root, f->path, (long long)f->tail_bytes, (long long)f->num_points);
    }
    if (f->nonfinite > 0) {
        c->nonfinite_files++;
        l3d_warn("%s/%s: %lld non-finite floats (recorded as \"nonfinite\"; sweep-pack drops "
                 "those points)", root, f->path, (long long)f->nonfinite);
    }
}

static const char *missing_file(const l3d_index_line *l)
{
    if (l->lidar.num_points < 0)
        return l->lidar.path;
    for (int i = 0; i < l->n_sweeps; i++)
        if (l->sweeps[i].lidar.num_points < 0)
            return l->sweeps[i].lidar.path;
    return NULL;
}

/* Where index lines go: built and formatted by a pool of threads
 * (formats/line_pool.h), taken in sample order here, written by a thread of its own
 * (formats/bg_writer.h) to standard output or the atomic file, a megabyte
 * at a time. */
typedef struct output {
    l3d_atomic_file af;
    int to_file;
    FILE *fp;
    l3d_line_pool *pool;
    l3d_bg_writer *w;
    char *text;
    size_t len, cap;
} output;

/* Text in order, into the writer's next buffer. */
static int to_text(output *out, const char *text, size_t len, l3d_err *err)
{
    if (out->len + len > out->cap) {
        size_t cap = out->cap ? 2 * out->cap : (size_t)2 << 20;
        while (cap < out->len + len)
            cap *= 2;
        char *p = realloc(out->text, cap);
        if (!p)
            return l3d_fail(err, L3D_EINTERNAL, "out of memory");
        out->text = p;
        out->cap = cap;
    }
    memcpy(out->text + out->len, text, len);
    out->len += len;
    if (out->len >= (1 << 20))
        return l3d_bg_writer_put(out->w, &out->text, &out->len, &out->cap, err);
    return L3D_OK;
}

/* What the line pool's workers and its sink need. */
typedef struct job_ctx {
    const options *o;
    const l3d_tables *t;
    l3d_source *src;
    const uint32_t *rows;
    l3d_index_opts io;
    counts c;
    output *out;
    l3d_progress *prog;
} job_ctx;

/* On a worker: job i is the i-th sample in index order. */
static int build_line(void *vctx, uint32_t i, l3d_index_line *line, l3d_err *err)
{
    job_ctx *j = vctx;
    return l3d_index_build(j->t, j->src, j->rows[i], &j->io, line, err);
}

/* In order, on the main thread: the missing-file policy, counts and
 * warnings, then the text. */
static int take_line(void *vctx, const l3d_index_line *line, const char *text, size_t len,
                     l3d_err *err)
{
    job_ctx *j = vctx;
    counts *c = &j->c;
    l3d_progress_update(j->prog, c->written + c->skipped_missing + 1);
    const char *missing = missing_file(line);
    if (missing && j->o->missing == MISSING_ERROR)
        return l3d_fail(err, L3D_EMISSING_LIDAR,
                        "sample '%s' (scene %s): LiDAR file '%s' not found in %s%s; "
                        "--missing-lidar skip or keep goes on without it",
                        line->token, line->scene_name, missing, j->o->sources[0],
                        j->o->n_sources > 1 ? " or the other sources" : "");
    if (missing && j->o->missing == MISSING_SKIP) {
        c->skipped_missing++;
        return L3D_OK;
    }
    c->kept_missing += missing != NULL;
    check_file(c, line->root, &line->lidar);
    for (int k = 0; k < line->n_sweeps; k++)
        check_file(c, line->root, &line->sweeps[k].lidar);
    c->sweeps += line->n_sweeps;
    c->sweeps_missing += line->sweeps_missing;
    c->written++;
    c->boxes += (long)line->n_boxes;
    return to_text(j->out, text, len, err);
}

/* Stops on err, which the pool reports in sample order: the lines before
 * the failing one still reach standard output; a file output is removed. */
static void die_output(output *out, const l3d_err *err)
{
    l3d_err e2 = {0};
    if (out->pool)
        l3d_line_pool_finish(out->pool, 1, &e2);
    out->pool = NULL;
    if (out->to_file) {
        l3d_bg_writer_finish(out->w, 1, &e2);
        l3d_atomic_abort(&out->af);
    } else if (!l3d_bg_writer_put(out->w, &out->text, &out->len, &out->cap, &e2)) {
        l3d_bg_writer_finish(out->w, 0, &e2);
    }
    l3d_die_err(err);
}

static void on_bytes(void *ctx, int64_t bytes) { l3d_progress_update(ctx, (double)bytes / 1e6); }

int main(int argc, char **argv)
{
    l3d_prog = "lyft-index";
    options o;
    parse_args(argc, argv, &o);
    l3d_err err = {0};
    l3d_source *src;
    if (l3d_source_open(&src, o.sources, o.n_sources, &err))
        l3d_die_err(&err);

    l3d_progress prog;
    double mb = (double)l3d_source_table_bytes(src, l3d_table_names) / 1e6;
    l3d_progress_begin(&prog, "reading tables", "MB", mb);
    l3d_tables t;
    int rc = l3d_tables_load(&t, src, o.channel, o.verify, on_bytes, &prog, &err);
    l3d_progress_end(&prog);
    if (rc)
        l3d_die_err(&err);

    unsigned char *keep = o.split_file ? read_split(&t, o.split_file) : NULL;
    uint32_t *rows, n_rows;
    if (l3d_index_order(&t, keep, &rows, &n_rows, &err))
        l3d_die_err(&err);

    output out = {.to_file = o.output != NULL, .fp = stdout};
    if (o.output) {
        if (l3d_atomic_open(&out.af, o.output, &err))
            l3d_die_err(&err);
        out.fp = out.af.fp;
    }
    if (l3d_bg_writer_start(&out.w, out.fp, o.output ? o.output : "standard output", &err)) {
        if (o.output)
            l3d_atomic_abort(&out.af);
        l3d_die_err(&err);
    }
    const l3d_lidar_loc **sd_locs = calloc((size_t)t.sample_data.n + 1, sizeof *sd_locs);
    if (!sd_locs)
        l3d_die(L3D_EINTERNAL, "out of memory");
    job_ctx j = {.o = &o, .t = &t, .src = src, .rows = rows, .out = &out, .prog = &prog,
                 .io = {.sweeps = o.sweeps, .verify_lidar = o.verify, .sd_locs = sd_locs}};
    l3d_strmap_init(&j.c.warned);
    if (l3d_line_pool_start(&out.pool, 0, build_line, take_line, &j, &err))
        die_output(&out, &err);
    l3d_progress_begin(&prog, "indexing", "samples", n_rows);
    for (uint32_t i = 0; i < n_rows; i++)
        if (l3d_line_pool_submit(out.pool, i, &err))
            die_output(&out, &err);
    int rc_pool = l3d_line_pool_finish(out.pool, 0, &err);
    out.pool = NULL;
    l3d_progress_end(&prog);
    if (rc_pool || l3d_bg_writer_put(out.w, &out.text, &out.len, &out.cap, &err))
        die_output(&out, &err);
    free(out.text);
    out.text = NULL;
    if (l3d_bg_writer_finish(out.w, 0, &err)) {
        if (o.output)
            l3d_atomic_abort(&out.af);
        l3d_die_err(&err);
    }
    if (o.output ? l3d_atomic_commit(&out.af, &err) != L3D_OK
                 : (fflush(out.fp) != 0 || ferror(out.fp))) {
        if (!o.output)
            l3d_fail(&err, L3D_EIO, "cannot write to standard output");
        l3d_die_err(&err);
    }
    if (j.c.skipped_missing)
        l3d_warn("%ld samples left out: a LiDAR file was missing (--missing-lidar skip)",
                 j.c.skipped_missing);
    if (j.c.kept_missing)
        l3d_warn("%ld samples written with \"lidar_missing\": a LiDAR file was missing",
                 j.c.kept_missing);
    if (j.c.sweeps_missing || t.n_prev_dangling)
        l3d_warn("%ld samples have fewer sweeps than asked because a 'prev' link names an absent "
                 "sample_data record (\"sweeps_missing\": true); %ld such links in the tables",
                 j.c.sweeps_missing, t.n_prev_dangling);
    if (t.n_samples_no_channel)
        l3d_warn("%ld samples have no %s key frame and were left out", t.n_samples_no_channel,
                 o.channel);
    if (!o.quiet)
        fprintf(stderr,
                "%s: %ld samples, %ld sweeps, %ld boxes written; %ld records read; warnings: "
                "%ld corrupt .bin, %ld with non-finite values, %ld missing LiDAR\n",
                l3d_prog, j.c.written, j.c.sweeps, j.c.boxes, t.n_records, j.c.corrupt,
                j.c.nonfinite_files, j.c.skipped_missing + j.c.kept_missing);
    l3d_strmap_free_keys(&j.c.warned);
    free(sd_locs);
    free(rows);
    free(keep);
    l3d_tables_free(&t);
    l3d_source_close(src);
    return 0;
}
