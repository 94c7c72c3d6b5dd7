/* lyft-synth: a synthetic Lyft Level 5 dataset (tables, ray-cast LiDAR scans,
 * optional archives and split files) that the real tools read like the real
 * thing. The model lives in tools/lyft-synth/; this file is options, order of
 * work and messages. See docs/synthetic-data.md. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/common/cli.h"
#include "tools/lyft-synth/classes.h"
#include "tools/lyft-synth/dataset.h"
#include "tools/lyft-synth/output.h"
#include "tools/lyft-synth/scans.h"
#include "tools/lyft-synth/tables.h"

#define RETURN_FRACTION 0.86   /* share of rays that hit something, measured on default scenes */
#define MAX_RAYS 4000000

static const char usage[] =
    "usage: lyft-synth [OPTIONS] OUTDIR\n"
    "\n"
    "Writes a synthetic Lyft Level 5 dataset in the Kaggle layout (OUTDIR/train_data/*.json,\n"
    "train_lidar/*.bin, train_maps/): scenes of a car driving past parked and moving objects\n"
    "of all nine classes, with LiDAR scans ray-cast from a rotating multi-beam sensor.\n"
    "The same options and seed give byte-identical output. See docs/synthetic-data.md.\n"
    "\n"
    "  --seed N               random seed (default 1)\n"
    "  --scenes N             scenes, one log each (default 4; 180 with --tables-only)\n"
    "  --samples-per-scene N  key frames per scene, 0.2 s apart (default 126)\n"
    "  --objects N            objects per scene (default 50: about 28 annotated per sample)\n"
    "  --annotation-range M   annotate objects within M metres of the ego (default 80)\n"
    "  --points N             about N LiDAR points per scan (default 100000)\n"
    "  --beams N              lasers of the sensor (default 64)\n"
    "  --azimuth-steps N      firings per turn (default: enough for --points)\n"
    "  --max-range M          metres (default 200)\n"
    "  --range-noise M        standard deviation of the range noise, metres (default 0.015)\n"
    "  --tables-only          tables only, no scans (num_lidar_pts = -1): fast; Lyft train's\n"
    "                         scene, sample and annotation counts, LIDAR_TOP data only\n"
    "  --archive FORMAT       also pack OUTDIR/train_{data,lidar,maps}.FORMAT: zip, tar, tar.gz\n"
    "  --split-out DIR        write DIR/train.txt and DIR/val.txt (scene names)\n"
    "  --val-fraction F       share of scenes in val.txt (default 0.1667, as 30 of 180)\n"
    "  --corrupt-bin N        N .bin files get 12 stray bytes (size not a multiple of 20)\n"
    "  --missing-bin N        N .bin files named by the tables are not written\n"
    "  --dangling-prev N      N LiDAR sample_data records get a 'prev' token that names nothing\n"
    "  --threads N            scan threads (default: online CPUs)\n"
    "  --force                replace OUTDIR if it exists and is not empty\n"
    "  -q, --quiet            no summary\n"
    "  -h, --help             this text\n"
    "      --version          version\n"
    "\n"
    "Exit codes: 0 ok, 1 internal or interrupted, 2 usage, 3 I/O, 9 archive.\n";

typedef struct options {
    syn_opts d;
    syn_scan_opts scan;
    long points;
    int force, quiet;
    const char *archive, *split_out, *outdir;
} options;

static long num_arg(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        l3d_die(L3D_EUSAGE, "--%s '%s': expected a whole number from %ld to %ld", opt, s, lo, hi);
    return v;
}

static double real_arg(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= lo && v <= hi))
        l3d_die(L3D_EUSAGE, "--%s '%s': expected a number from %g to %g", opt, s, lo, hi);
    return v;
}

static void parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"seed", required_argument, 0, 1}, {"scenes", required_argument, 0, 2},
        {"samples-per-scene", required_argument, 0, 3}, {"objects", required_argument, 0, 4},
        {"points", required_argument, 0, 5}, {"beams", required_argument, 0, 6},
        {"azimuth-steps", required_argument, 0, 7}, {"max-range", required_argument, 0, 8},
        {"range-noise", required_argument, 0, 9}, {"tables-only", no_argument, 0, 10},
        {"archive", required_argument, 0, 11}, {"split-out", required_argument, 0, 12},
        {"val-fraction", required_argument, 0, 13}, {"corrupt-bin", required_argument, 0, 14},
        {"missing-bin", required_argument, 0, 15}, {"dangling-prev", required_argument, 0, 16},
        {"threads", required_argument, 0, 17}, {"force", no_argument, 0, 18},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 19}, {"annotation-range", required_argument, 0, 20},
        {0, 0, 0, 0},
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (options){.d = {.seed = 1, .scenes = -1, .samples = 126, .objects = 50, .radius = 80,
                         .val_fraction = 30.0 / 180},
                   .scan = {.beams = 64, .threads = cpus < 1 ? 1 : cpus > 64 ? 64 : (int)cpus,
                            .min_range = 1.0, .max_range = 200, .noise_sd = 0.015},
                   .points = 100000};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        const char *name = c > 0 && c < 19 ? longopts[c - 1].name : "";
        switch (c) {
        case 1: {
            char *end;
            errno = 0;
            o->d.seed = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg || optarg[0] == '-')
                l3d_die(L3D_EUSAGE, "--seed '%s': expected a whole number >= 0", optarg);
            break;
        }
        case 2: o->d.scenes = (int)num_arg(name, optarg, 1, 100000); break;
        case 3: o->d.samples = (int)num_arg(name, optarg, 1, 100000); break;
        case 4: o->d.objects = (int)num_arg(name, optarg, 0, 100000); break;
        case 5: o->points = num_arg(name, optarg, 1, MAX_RAYS); break;
        case 6: o->scan.beams = (int)num_arg(name, optarg, 1, 1024); break;
        case 7: o->scan.steps = (int)num_arg(name, optarg, 1, 100000); break;
        case 8: o->scan.max_range = real_arg(name, optarg, 2, 2000); break;
        case 9: o->scan.noise_sd = real_arg(name, optarg, 0, 1); break;
        case 10: o->d.tables_only = 1; break;
        case 11:
            if (strcmp(optarg, "zip") && strcmp(optarg, "tar") && strcmp(optarg, "tar.gz"))
                l3d_die(L3D_EUSAGE, "--archive '%s': expected zip, tar or tar.gz", optarg);
            o->archive = optarg;
            break;
        case 12: o->split_out = optarg; break;
        case 13: o->d.val_fraction = real_arg(name, optarg, 0, 1); break;
        case 14: o->d.corrupt_bin = (int)num_arg(name, optarg, 0, 1L << 30); break;
        case 15: o->d.missing_bin = (int)num_arg(name, optarg, 0, 1L << 30); break;
        case 16: o->d.dangling_prev = (int)num_arg(name, optarg, 0, 1L << 30); break;
        case 17: o->scan.threads = (int)num_arg(name, optarg, 1, 256); break;
        case 18: o->force = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(usage, stdout); exit(0);
        case 19: printf("lyft-synth %s\n", LIDAR3D_VERSION); exit(0);
        case 20: o->d.radius = real_arg("annotation-range", optarg, 1, 1000); break;
        default:
            l3d_die(L3D_EUSAGE, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        l3d_die(L3D_EUSAGE, optind >= argc ? "no OUTDIR given (see --help)"
                                           : "one OUTDIR expected, got '%s' too", argv[argc - 1]);
    o->outdir = argv[optind];
    if (o->d.scenes < 0)
        o->d.scenes = o->d.tables_only ? 180 : 4;
    long samples = (long)o->d.scenes * o->d.samples;
    if (samples > 10000000)
        l3d_die(L3D_EUSAGE, "%ld samples in all is too many (at most 10000000)", samples);
    if (o->d.tables_only && (o->d.corrupt_bin || o->d.missing_bin))
        l3d_die(L3D_EUSAGE, "--corrupt-bin and --missing-bin need scans (not --tables-only)");
    if ((long)o->d.corrupt_bin + o->d.missing_bin > samples)
        l3d_die(L3D_EUSAGE, "--corrupt-bin %d and --missing-bin %d: only %ld .bin files",
                o->d.corrupt_bin, o->d.missing_bin, samples);
    if (o->d.dangling_prev > samples - o->d.scenes - o->d.corrupt_bin - o->d.missing_bin)
        l3d_die(L3D_EUSAGE, "--dangling-prev %d: only %ld samples have a predecessor and no "
                "other defect", o->d.dangling_prev,
                samples - o->d.scenes - o->d.corrupt_bin - o->d.missing_bin);
    if (!o->scan.steps)
        o->scan.steps = (int)ceil(o->points / (o->scan.beams * RETURN_FRACTION));
    if ((long)o->scan.beams * o->scan.steps > MAX_RAYS)
        l3d_die(L3D_EUSAGE, "%d beams x %d azimuth steps is more than %d rays per scan",
                o->scan.beams, o->scan.steps, MAX_RAYS);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }
static void on_scene(void *p, double done) { l3d_progress_update(p, done); }

static void summary(const options *o, const syn_dataset *d, uint64_t points, double scan_s,
                    double total_s)
{
    long per_class[SYN_NCLASS] = {0};
    for (uint32_t a = 0; a < d->n_ann; a++)
        per_class[d->inst[d->ann[a].inst].cls]++;
    fprintf(stderr, "%s: wrote %s: %d scenes, %u samples, %u instances, %u annotations "
            "(%.1f per sample)", l3d_prog, o->outdir, d->n_scenes, d->n_samples, d->n_inst,
            d->n_ann, d->n_samples ? (double)d->n_ann / d->n_samples : 0.0);
    if (!o->d.tables_only)
        fprintf(stderr, ", %llu points (%.0f per scan); scans %.1f s, %.2fM points/s",
                (unsigned long long)points, (double)points / d->n_samples, scan_s,
                scan_s > 0 ? points / scan_s / 1e6 : 0.0);
    fprintf(stderr, "; %.1f s in all\n", total_s);
    fprintf(stderr, "%s: annotations per class:", l3d_prog);
    for (int k = 0; k < SYN_NCLASS; k++)
        fprintf(stderr, " %s %ld%s", syn_classes[k].name, per_class[k], k < 8 ? "," : "\n");
}

int main(int argc, char **argv)
{
    l3d_prog = "lyft-synth";
    options o;
    parse_args(argc, argv, &o);
    double t_start = l3d_now_s();
    l3d_err err = {0};
    syn_out out;
    if (syn_out_begin(&out, o.outdir, o.force, o.d.tables_only, &err))
        l3d_die_err(&err);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    syn_dataset d;
    l3d_progress prog;
    l3d_progress_begin(&prog, "building scenes", "scenes", o.d.scenes);
    int rc = syn_dataset_build(&d, &o.d, on_scene, &prog, &err);
    l3d_progress_end(&prog);
    uint64_t points = 0;
    double t_scan = l3d_now_s();
    if (!rc && !o.d.tables_only)
        rc = syn_scans_run(&d, &o.scan, out.tmp, &stop, &points, &err);
    t_scan = l3d_now_s() - t_scan;
    char path[4400];
    snprintf(path, sizeof path, "%s/train_data", out.tmp);
    if (!rc)
        rc = syn_write_tables(&d, path, &stop, &err);
    snprintf(path, sizeof path, "%s/train_maps/map_raster_palo_alto.png", out.tmp);
    if (!rc)
        rc = syn_write_map_png(path, &err);
    if (!rc && o.archive)
        rc = syn_pack(&d, out.tmp, o.archive, &stop, &err);
    if (!rc && stop)
        rc = l3d_fail(&err, L3D_EINTERNAL, "interrupted");
    if (!rc)
        rc = syn_out_commit(&out, &err);
    if (!rc && o.split_out)
        rc = syn_write_split(&d, o.split_out, &err);
    if (rc) {   /* l3d_die exits without atexit handlers: clean up here */
        syn_out_abort(&out);
        syn_dataset_free(&d);
        l3d_die_err(&err);
    }
    if (!o.quiet)
        summary(&o, &d, points, t_scan, l3d_now_s() - t_start);
    syn_dataset_free(&d);
    return 0;
}
