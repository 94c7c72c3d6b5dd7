/* sweep-pack: index lines -> an HDF5 sweep cache (each scan stored once).
 * Also --dump, which prints one sample's merged cloud from a cache. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/sweep_cache.h"
#include "tools/common/cli.h"
#include "tools/sweep-pack/merge.h"
#include "tools/sweep-pack/plan.h"
#include "tools/sweep-pack/scans.h"

static const char usage[] =
    "usage: sweep-pack [OPTIONS] [INDEX] -o CACHE.h5\n"
    "       sweep-pack --merge SHARD.h5... -o CACHE.h5\n"
    "       sweep-pack --dump SAMPLE [--sweeps K] [--intensity] CACHE.h5\n"
    "\n"
    "Packs the LiDAR scans named by lyft-index lines (INDEX, or standard input) into one\n"
    "HDF5 sweep cache: every scan once, in its own sensor frame, with per-sample scan lists,\n"
    "sweep transforms, time lags, GT boxes and poses. One cache serves 0, 5 and 10 sweeps.\n"
    "Format: docs/formats.md.\n"
    "\n"
    "  -o, --output FILE         the cache to write (atomically)\n"
    "  -j, --threads N           reader threads (default: online CPUs)\n"
    "      --shard I/N           keep only scenes whose index-order position % N == I\n"
    "      --intensity           also store column 3 (intensity; constant in Lyft)\n"
    "      --no-quantize         store float32 points instead of int16 at 1/128 m\n"
    "      --sweep-transform T   correct (default) or mmdet3d-1.x (reproduces its translation\n"
    "                            defect, for parity studies)\n"
    "      --merge               join shard caches (from --shard) into one, in the order given\n"
    "      --dump SAMPLE         print the merged cloud of SAMPLE (token or 0-based index)\n"
    "                            as text: x y z time_lag [intensity]\n"
    "      --sweeps K            sweeps merged by --dump (default 10)\n"
    "  -q, --quiet               no summary line\n"
    "  -h, --help, --version\n"
    "\n"
    "Exit codes: as lyft-index (docs/tools.md): 3 I/O, 4/5 bad index line, 8 LiDAR file\n"
    "missing, 9 damaged archive, 11 unknown class, 12 truncated LiDAR file or bad cache.\n";

typedef struct options {
    const char *output, *input, *dump, *transform;
    int threads, intensity, quantise, quiet, sweeps, merge;
    char **inputs;
    int n_inputs;
    int shard_i, shard_n;
} options;

static void parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"threads", required_argument, 0, 'j'},
        {"shard", required_argument, 0, 's'}, {"intensity", no_argument, 0, 'I'},
        {"no-quantize", no_argument, 0, 'Q'}, {"sweep-transform", required_argument, 0, 'T'},
        {"dump", required_argument, 0, 'd'}, {"merge", no_argument, 0, 'M'}, {"sweeps", required_argument, 0, 'k'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'v'}, {0, 0, 0, 0},
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (options){.threads = cpus > 0 ? (int)cpus : 1, .quantise = 1, .transform = "correct",
                   .sweeps = 10, .shard_n = 1};
    int c;
    char *end;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case 'j':
            o->threads = (int)strtol(optarg, &end, 10);
            if (*end || o->threads < 1 || o->threads > 64)
                l3d_die(L3D_EUSAGE, "--threads '%s': expected 1 to 64", optarg);
            break;
        case 's':
            if (sscanf(optarg, "%d/%d", &o->shard_i, &o->shard_n) != 2 || o->shard_n < 1 ||
                o->shard_i < 0 || o->shard_i >= o->shard_n)
                l3d_die(L3D_EUSAGE, "--shard '%s': expected I/N with 0 <= I < N", optarg);
            break;
        case 'I': o->intensity = 1; break;
        case 'Q': o->quantise = 0; break;
        case 'T':
            if (strcmp(optarg, "correct") && strcmp(optarg, "mmdet3d-1.x"))
                l3d_die(L3D_EUSAGE, "--sweep-transform '%s': expected correct or mmdet3d-1.x", optarg);
            o->transform = optarg;
            break;
        case 'd': o->dump = optarg; break;
        case 'M': o->merge = 1; break;
        case 'k':
            o->sweeps = (int)strtol(optarg, &end, 10);
            if (*end || o->sweeps < 0 || o->sweeps > 10)
                l3d_die(L3D_EUSAGE, "--sweeps '%s': expected 0 to 10", optarg);
            break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(usage, stdout); exit(0);
        case 'v': printf("sweep-pack %s\n", LIDAR3D_VERSION); exit(0);
        default:
            l3d_die(L3D_EUSAGE, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    o->inputs = argv + optind;
    o->n_inputs = argc - optind;
    if (o->merge && (o->n_inputs < 1 || !o->output))
        l3d_die(L3D_EUSAGE, "--merge needs shard caches and -o CACHE.h5");
    if (!o->merge && argc - optind > 1)
        l3d_die(L3D_EUSAGE, "one INDEX or CACHE at most (see --help)");
    o->input = optind < argc ? argv[optind] : NULL;
    if (o->dump && !o->input)
        l3d_die(L3D_EUSAGE, "--dump needs the CACHE to read");
    if (!o->dump && !o->output)
        l3d_die(L3D_EUSAGE, "no output: give -o CACHE.h5");
}

static int dump(const options *o)
{
    l3d_sweep_cache c;
    l3d_err err = {0};
    if (l3d_sweep_cache_open(&c, o->input, 0, &err))
        l3d_die_err(&err);
    int64_t s = -1;
    char *end;
    long long idx = strtoll(o->dump, &end, 10);
    if (!*end && end != o->dump && strlen(o->dump) < 16)
        s = idx;
    else
        for (int64_t i = 0; i < c.n_samples; i++)
            if (!strncmp(c.sample_tokens + i * L3D_CACHE_TOKEN, o->dump, L3D_CACHE_TOKEN))
                s = i;
    if (s < 0 || s >= c.n_samples)
        l3d_die(L3D_EUSAGE, "%s: no sample '%s' (expected a token or an index below %" PRId64 ")",
                o->input, o->dump, c.n_samples);
    int stride = o->intensity && c.intensity ? 5 : 4;
    if (o->intensity && !c.intensity)
        l3d_die(L3D_EUSAGE, "%s: the cache holds no intensity (pack with --intensity)", o->input);
    int64_t n = l3d_sweep_cache_merged_count(&c, s, o->sweeps);
    float *pts = malloc((size_t)(n ? n : 1) * (size_t)stride * sizeof *pts);
    if (!pts)
        l3d_die(L3D_EINTERNAL, "out of memory");
    l3d_sweep_cache_merge(&c, s, o->sweeps, o->intensity, pts);
    for (int64_t i = 0; i < n; i++) {
        const float *p = pts + i * stride;
        if (stride == 5)
            printf("%.9g %.9g %.9g %.9g %.9g\n", p[0], p[1], p[2], p[3], p[4]);
        else
            printf("%.9g %.9g %.9g %.9g\n", p[0], p[1], p[2], p[3]);
    }
    free(pts);
    l3d_sweep_cache_close(&c);
    if (fflush(stdout) != 0)
        l3d_die(L3D_EIO, "cannot write to standard output");
    return 0;
}

static char *join_args(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = calloc(n, 1);
    for (int i = 0; s && i < argc; i++) {
        strcat(s, argv[i]);
        if (i + 1 < argc)
            strcat(s, " ");
    }
    return s;
}

int main(int argc, char **argv)
{
    l3d_prog = "sweep-pack";
    char *command = join_args(argc, argv);   /* before getopt reorders argv */
    options o;
    parse_args(argc, argv, &o);
    if (o.dump) {
        free(command);
        return dump(&o);
    }
    l3d_err err = {0};
    if (o.merge) {
        if (merge_caches(o.inputs, o.n_inputs, o.output, command, &err))
            l3d_die_err(&err);
        free(command);
        return 0;
    }
    FILE *in = o.input ? fopen(o.input, "r") : stdin;
    const char *in_name = o.input ? o.input : "<stdin>";
    if (!in)
        l3d_die(L3D_EIO, "%s: %m", o.input);
    pack_plan plan;
    plan_opts po = {.shard_i = o.shard_i, .shard_n = o.shard_n,
                    .mmdet_transform = !strcmp(o.transform, "mmdet3d-1.x")};
    double t0 = l3d_now_s();
    if (plan_read(&plan, in, in_name, &po, &err))
        l3d_die_err(&err);
    if (o.input)
        fclose(in);
    scan_opts so = {.threads = o.threads, .quantise = o.quantise, .intensity = o.intensity};
    scan_store store;
    scan_stats stats;
    if (scans_read(&plan, &so, o.output, &store, &stats, &err)) {
        scans_close(&store);
        l3d_die_err(&err);
    }
    double t_read = l3d_now_s() - t0;
    int64_t *offsets = malloc((size_t)(plan.n_scans + 1) * sizeof *offsets);
    char *scan_tokens = calloc((size_t)(plan.n_scans ? plan.n_scans : 1), L3D_CACHE_TOKEN);
    if (!offsets || !scan_tokens || !command)
        l3d_die(L3D_EINTERNAL, "out of memory");
    offsets[0] = 0;
    for (int64_t k = 0; k < plan.n_scans; k++) {
        offsets[k + 1] = offsets[k] + plan.scans[k].count;
        memcpy(scan_tokens + k * L3D_CACHE_TOKEN, plan.scans[k].token, strlen(plan.scans[k].token));
    }
    char checksum[32];
    snprintf(checksum, sizeof checksum, "fnv1a64:%016" PRIx64, plan.index_checksum);
    l3d_sweep_cache_meta m = {
        .n_samples = plan.n_samples, .n_scans = plan.n_scans, .n_points = offsets[plan.n_scans],
        .n_boxes = plan.n_boxes, .n_scenes = plan.n_scenes, .quantised = o.quantise,
        .with_intensity = o.intensity, .scan_offsets = offsets, .scan_tokens = scan_tokens,
        .sample_scans = plan.sample_scans, .sample_transforms = plan.transforms,
        .sample_time_lags = plan.lags, .sample_timestamps = plan.timestamps,
        .sample_scene = plan.scene, .sample_lidar2ego = plan.l2e, .sample_ego2global = plan.e2g,
        .sample_tokens = plan.tokens, .scene_names = plan.scene_names, .boxes = plan.boxes,
        .box_labels = plan.labels, .box_offsets = plan.box_offsets,
        .tool_version = "sweep-pack " LIDAR3D_VERSION, .command = command,
        .index_checksum = checksum, .sweep_transform = o.transform,
        .corrupt_policy = "a .bin whose size is not a multiple of 20 bytes: its first floor(size/20) "
                          "points are used, the tail ignored; points with a non-finite value are dropped",
        .points_dropped_nonfinite = stats.dropped_nonfinite,
        .points_dropped_range = stats.dropped_range, .corrupt_files = stats.corrupt_files,
    };
    points_cursor cur = {.p = &plan, .st = &store};
    int rc = l3d_sweep_cache_write(o.output, &m, scans_points_fn, &cur, &err);
    scans_close(&store);
    if (rc)
        l3d_die_err(&err);
    double dt = l3d_now_s() - t0;
    if (!o.quiet)
        fprintf(stderr,
                "%s: %" PRId64 " samples, %" PRId64 " scans, %" PRId64 " points, %" PRId64
                " boxes -> %s in %.2f s (%.0f MB/s read); dropped %" PRId64
                " non-finite and %" PRId64 " out-of-range points; %" PRId64 " corrupt files\n",
                l3d_prog, plan.n_samples, plan.n_scans, m.n_points, plan.n_boxes, o.output, dt,
                stats.bytes_read / 1e6 / (t_read > 1e-9 ? t_read : 1e-9), stats.dropped_nonfinite,
                stats.dropped_range, stats.corrupt_files);
    free(offsets);
    free(scan_tokens);
    free(command);
    plan_free(&plan);
    return 0;
}
