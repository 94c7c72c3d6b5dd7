/* ssn-train: trains SSN from memory-mapped sweep caches (CPU reference path).
 * The loop: load batch, forward, loss, backward, step, log, checkpoint. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/cpu/threads.h"
#include "tools/common/cli.h"
#include "trainer/tblog.h"
#include "trainer/trainer.h"

#define EXIT_STOPPED 75   /* checkpointed and stopped early; resume with --resume auto */

static const char usage[] =
    "usage: ssn-train --cache DIR|FILE [OPTIONS]\n"
    "\n"
    "Trains SSN (MMDetection3D's Lyft configuration) from sweep caches made by sweep-pack:\n"
    "--cache DIR reads every DIR/sweeps*.h5 (shards in name order), or one cache file.\n"
    "With --input voxels it reads DIR/voxels-K*.h5 (K = sweeps) made by voxel-cache instead:\n"
    "faster, but the only augmentations are grid-exact flips.\n"
    "See docs/training.md.\n"
    "\n"
    "  --config lyft|small|FILE  configuration (default lyft); FILE holds key = value lines\n"
    "  --set KEY=VALUE           override one key (repeatable); --print-config lists them\n"
    "  --sweeps 0|5|10           sweeps merged per sample (default: the config's 10)\n"
    "  --input sweeps|voxels     sweep caches with full augmentation (default), or voxel caches\n"
    "  --precision fp32|amp|fp16 (default fp32; amp/fp16 emulate fp16 rounding on the CPU)\n"
    "  --device cpu|cuda         (default cpu)\n"
    "  --steps N | --epochs E    total optimizer steps of the run (default: the config's epochs)\n"
    "  --batch B, --accum N      samples per micro-batch, micro-batches per step\n"
    "  --seed S                  (default: the config's 0)\n"
    "  --out RUNDIR              run folder: config.txt, metrics.jsonl, tb/, ckpt/ (default runs/ssn)\n"
    "  --ckpt-every N            checkpoint every N steps (default 1000)\n"
    "  --keep K                  keep the K newest checkpoints (default 5)\n"
    "  --log-every N             a log line and a metrics record every N steps (default 10)\n"
    "  --resume auto|PATH        continue from the newest valid checkpoint of RUNDIR/ckpt\n"
    "                            (auto: start fresh if there is none) or from PATH\n"
    "  --stop-after N            checkpoint and stop after N steps of this invocation\n"
    "  --time-limit DURATION     checkpoint and stop after DURATION (90, 30s, 20m, 2h)\n"
    "  --threads N               OpenBLAS threads (default: its own choice)\n"
    "  --print-config            print the resolved configuration and exit\n"
    "  -h, --help, --version\n"
    "\n"
    "SIGINT/SIGTERM finish the current step, checkpoint and exit 75, as --stop-after and\n"
    "--time-limit do; run again with --resume auto to continue the same schedule.\n"
    "Exit codes: 0 done, 2 usage, 3 I/O, 12 bad input (caches, checkpoints), 75 stopped early.\n";

typedef struct options {
    const char *cache, *config, *precision, *device, *out, *resume, *input;
    const char *sets[64];
    int n_sets, sweeps, batch, accum, ckpt_every, keep, log_every, threads, print_config;
    long seed;
    int64_t steps, epochs, stop_after;
    double time_limit;
} options;

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

static int64_t parse_count(const char *opt, const char *v, int64_t lo)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || end == v || n < lo)
        l3d_die(L3D_EUSAGE, "%s '%s': expected an integer >= %lld", opt, v, (long long)lo);
    return n;
}

static double parse_duration(const char *v)
{
    char *end;
    double x = strtod(v, &end);
    double mul = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600 : -1;
    if (end == v || mul < 0 || !(x > 0))
        l3d_die(L3D_EUSAGE, "--time-limit '%s': expected a duration like 90, 30s, 20m or 2h", v);
    return x * mul;
}

static void parse_args(int argc, char **argv, options *o)
{
    enum { O_CACHE = 256, O_CONFIG, O_SET, O_SWEEPS, O_PREC, O_DEVICE, O_STEPS, O_EPOCHS,
           O_BATCH, O_ACCUM, O_CKPT, O_KEEP, O_LOG, O_OUT, O_RESUME, O_SEED, O_STOP, O_TIME,
           O_THREADS, O_PRINT, O_VERSION, O_INPUT };
    static const struct option longopts[] = {
        {"cache", 1, 0, O_CACHE}, {"config", 1, 0, O_CONFIG}, {"set", 1, 0, O_SET},
        {"sweeps", 1, 0, O_SWEEPS}, {"precision", 1, 0, O_PREC}, {"device", 1, 0, O_DEVICE},
        {"steps", 1, 0, O_STEPS}, {"epochs", 1, 0, O_EPOCHS}, {"batch", 1, 0, O_BATCH},
        {"accum", 1, 0, O_ACCUM}, {"ckpt-every", 1, 0, O_CKPT}, {"keep", 1, 0, O_KEEP},
        {"log-every", 1, 0, O_LOG}, {"out", 1, 0, O_OUT}, {"resume", 1, 0, O_RESUME},
        {"seed", 1, 0, O_SEED}, {"stop-after", 1, 0, O_STOP}, {"time-limit", 1, 0, O_TIME},
        {"threads", 1, 0, O_THREADS}, {"print-config", 0, 0, O_PRINT}, {"input", 1, 0, O_INPUT},
        {"help", 0, 0, 'h'}, {"version", 0, 0, O_VERSION}, {0, 0, 0, 0},
    };
    *o = (options){.config = "lyft", .precision = "fp32", .device = "cpu", .out = "runs/ssn",
                   .input = "sweeps",
                   .sweeps = -1, .ckpt_every = 1000, .keep = 5, .log_every = 10, .seed = -1};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_CACHE: o->cache = optarg; break;
        case O_CONFIG: o->config = optarg; break;
        case O_SET:
            if (o->n_sets == 64)
                l3d_die(L3D_EUSAGE, "at most 64 --set options");
            o->sets[o->n_sets++] = optarg;
            break;
        case O_SWEEPS: o->sweeps = (int)parse_count("--sweeps", optarg, 0); break;
        case O_PREC: o->precision = optarg; break;
        case O_DEVICE: o->device = optarg; break;
        case O_STEPS: o->steps = parse_count("--steps", optarg, 1); break;
        case O_EPOCHS: o->epochs = parse_count("--epochs", optarg, 1); break;
        case O_BATCH: o->batch = (int)parse_count("--batch", optarg, 1); break;
        case O_ACCUM: o->accum = (int)parse_count("--accum", optarg, 1); break;
        case O_CKPT: o->ckpt_every = (int)parse_count("--ckpt-every", optarg, 1); break;
        case O_KEEP: o->keep = (int)parse_count("--keep", optarg, 1); break;
        case O_LOG: o->log_every = (int)parse_count("--log-every", optarg, 1); break;
        case O_OUT: o->out = optarg; break;
        case O_RESUME: o->resume = optarg; break;
        case O_SEED: o->seed = (long)parse_count("--seed", optarg, 0); break;
        case O_STOP: o->stop_after = parse_count("--stop-after", optarg, 1); break;
        case O_TIME: o->time_limit = parse_duration(optarg); break;
        case O_THREADS: o->threads = (int)parse_count("--threads", optarg, 1); break;
        case O_PRINT: o->print_config = 1; break;
        case O_INPUT:
            if (strcmp(optarg, "sweeps") && strcmp(optarg, "voxels"))
                l3d_die(L3D_EUSAGE, "--input '%s': expected sweeps or voxels", optarg);
            o->input = optarg;
            break;
        case 'h': fputs(usage, stdout); exit(0);
        case O_VERSION: printf("ssn-train %s\n", LIDAR3D_VERSION); exit(0);
        default:
            l3d_die(L3D_EUSAGE, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        l3d_die(L3D_EUSAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if (o->steps && o->epochs)
        l3d_die(L3D_EUSAGE, "give --steps or --epochs, not both");
}

static int precision_of(const char *p)
{
    if (!strcmp(p, "fp32")) return L3D_FP32;
    if (!strcmp(p, "amp")) return L3D_AMP;
    if (!strcmp(p, "fp16")) return L3D_FP16;
    l3d_die(L3D_EUSAGE, "--precision '%s': expected fp32, amp or fp16", p);
}

static void resolve_config(const options *o, l3d_config *cfg)
{
    l3d_err err = {0};
    int rc = strchr(o->config, '/') || strchr(o->config, '.')
                 ? (l3d_config_preset(cfg, "lyft", &err) ? err.code : l3d_config_load(cfg, o->config, &err))
                 : l3d_config_preset(cfg, o->config, &err);
    if (rc)
        l3d_die_err(&err);
    for (int i = 0; i < o->n_sets; i++)
        if (l3d_config_set(cfg, o->sets[i], "--set", &err))
            l3d_die_err(&err);
    if (o->sweeps >= 0) cfg->sweeps = o->sweeps;
    if (o->batch) cfg->batch = o->batch;
    if (o->accum) cfg->accum = o->accum;
    if (o->seed >= 0) cfg->seed = o->seed;
    if (l3d_config_validate(cfg, &err))
        l3d_die_err(&err);
}

/* --cache: a cache file, or the folder's caches of the input kind in name order:
 * sweeps*.h5, or voxels-K*.h5 for K sweeps. */
static int find_caches(const char *cache, int voxels, int sweeps, char ***out)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, voxels ? "voxels-%d" : "sweeps", sweeps);
    struct stat st;
    if (stat(cache, &st) != 0)
        l3d_die(L3D_EIO, "--cache '%s': %s", cache, strerror(errno));
    char **list = NULL;
    int n = 0;
    if (!S_ISDIR(st.st_mode)) {
        list = malloc(sizeof *list);
        list[n++] = strdup(cache);
    } else {
        struct dirent **ents;
        int k = scandir(cache, &ents, NULL, alphasort);
        for (int i = 0; i < k; i++) {
            const char *nm = ents[i]->d_name;
            size_t len = strlen(nm);
            size_t pl = strlen(prefix);
            int match = len > pl + 2 && !strncmp(nm, prefix, pl) && !strcmp(nm + len - 3, ".h5");
            /* voxels-1*.h5 must not take voxels-10.h5 */
            if (match && voxels && nm[pl] >= '0' && nm[pl] <= '9')
                match = 0;
            if (match) {
                list = realloc(list, (size_t)(n + 1) * sizeof *list);
                list[n] = malloc(strlen(cache) + len + 2);
                sprintf(list[n++], "%s/%s", cache, nm);
            }
            free(ents[i]);
        }
        free(ents);
        if (n == 0)
            l3d_die(L3D_EINPUT, "--cache '%s': no %s*.h5 in it (make one with %s)", cache, prefix,
                    voxels ? "voxel-cache" : "sweep-pack");
    }
    *out = list;
    return n;
}

static void mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0777);
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        l3d_die(L3D_EIO, "cannot create '%s': %s", path, strerror(errno));
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static char *config_text(const l3d_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    l3d_config_print(cfg, fp);
    fclose(fp);
    return buf;
}

static void save(l3d_trainer *T, const options *o, const char *cfg_text, const char *ckdir)
{
    l3d_ckpt c;
    uint8_t rng[L3D_RNG_STATE_BYTES], pos[16];
    char hashes[64] = "", path[4096];
    l3d_trainer_ckpt(T, &c, rng, pos, (char *)cfg_text, hashes);
    l3d_err err = {0};
    if (l3d_ckpt_save(ckdir, o->keep, &c, path, sizeof path, &err))
        l3d_die_err(&err);
    fprintf(stderr, "%s: checkpoint %s\n", l3d_prog, path);
}

int main(int argc, char **argv)
{
    l3d_prog = "ssn-train";
    options o;
    parse_args(argc, argv, &o);
    l3d_config cfg;
    resolve_config(&o, &cfg);
    if (o.print_config) {
        l3d_config_print(&cfg, stdout);
        return 0;
    }
    int precision = precision_of(o.precision);
    if (!strcmp(o.device, "cuda"))
        l3d_die(L3D_EUSAGE, "--device cuda: the CUDA training path is not implemented yet; "
                "use --device cpu");
    if (strcmp(o.device, "cpu"))
        l3d_die(L3D_EUSAGE, "--device '%s': expected cpu or cuda", o.device);
    if (!o.cache)
        l3d_die(L3D_EUSAGE, "no --cache given (see --help)");
    if (o.threads)
        l3d_set_threads(o.threads);
    char **caches;
    int voxel_input = !strcmp(o.input, "voxels");
    int n_caches = find_caches(o.cache, voxel_input, cfg.sweeps, &caches);
    l3d_err err = {0};
    l3d_trainer T;
    if (l3d_trainer_open(&T, &cfg, precision, caches, n_caches, voxel_input, &err))
        l3d_die_err(&err);
    int64_t total = o.steps ? o.steps
                  : (o.epochs ? o.epochs : cfg.epochs) * T.iters_per_epoch;
    char *cfg_text = config_text(&cfg), ckdir[4096], path[4200];
    mkdirs(o.out);
    snprintf(ckdir, sizeof ckdir, "%s/ckpt", o.out);
    mkdirs(ckdir);
    if (o.resume) {
        l3d_ckpt c;
        uint8_t rng[L3D_RNG_STATE_BYTES], pos[16];
        char hashes[64] = "", loaded[4096] = "", warn[4096] = "";
        l3d_trainer_ckpt(&T, &c, rng, pos, NULL, hashes);
        c.rng = NULL; c.data_pos = NULL; c.config = NULL; c.cache_hashes = NULL;
        int rc = strcmp(o.resume, "auto")
                     ? l3d_ckpt_read(o.resume, &c, &err)
                     : l3d_ckpt_load_latest(ckdir, &c, loaded, sizeof loaded, warn, sizeof warn, &err);
        if (warn[0])
            fprintf(stderr, "%s", warn);
        if (rc)
            l3d_die_err(&err);
        if (strcmp(o.resume, "auto"))
            snprintf(loaded, sizeof loaded, "%s", o.resume);
        if (loaded[0]) {
            if (!c.config || strcmp(c.config, cfg_text))
                l3d_die(L3D_EUSAGE, "%s was trained with another configuration; pass the same "
                        "--config/--set options (its config.txt lists them)", loaded);
            if (l3d_trainer_restore(&T, &c, &err))
                l3d_die_err(&err);
            fprintf(stderr, "%s: resumed from %s at step %" PRId64 "\n", l3d_prog, loaded, T.step);
        }
        l3d_ckpt_free_blobs(&c);
    }
    snprintf(path, sizeof path, "%s/config.txt", o.out);
    FILE *cf = fopen(path, "w");
    if (!cf || fputs(cfg_text, cf) < 0 || fclose(cf) != 0)
        l3d_die(L3D_EIO, "cannot write '%s'", path);
    snprintf(path, sizeof path, "%s/metrics.jsonl", o.out);
    FILE *metrics = fopen(path, "a");
    if (!metrics)
        l3d_die(L3D_EIO, "cannot open '%s': %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/tb", o.out);
    mkdirs(path);
    l3d_tblog tb;
    if (l3d_tblog_open(&tb, path, &err))
        l3d_die_err(&err);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "%s: %d %s cache(s), %" PRId64 " samples, %d sweeps, %s, batch %d x %d, "
            "%" PRId64 " steps per epoch, training to step %" PRId64 "; augmentation: %s\n",
            l3d_prog, n_caches, o.input, T.loader.n_samples, cfg.sweeps, o.precision, cfg.batch,
            cfg.accum, T.iters_per_epoch, total,
            voxel_input ? "grid-exact flips only (voxel caches)"
                        : "rotation, scaling, flips, point shuffle, re-voxelized per sample");
    double t_start = l3d_now_s(), t_log = t_start;
    int64_t done_here = 0, samples_since = 0;
    int stopped = 0;
    while (T.step < total) {
        l3d_step_log log;
        if (l3d_trainer_step(&T, &log, &err))
            l3d_die_err(&err);
        done_here++;
        samples_since += (int64_t)cfg.batch * cfg.accum;
        if (log.scaler_event[0])
            fprintf(stderr, "%s: %s\n", l3d_prog, log.scaler_event);
        if (T.step % o.log_every == 0 || T.step == total) {
            double now = l3d_now_s(), sps = samples_since / (now - t_log > 1e-9 ? now - t_log : 1e-9);
            fprintf(stderr, "%s: step %" PRId64 " epoch %" PRId64 " loss %.4f (cls %.4f bbox %.4f "
                    "dir %.4f) lr %.3g scale %.3g grad %.3g %.2f samples/s data %.0f ms peak %.0f MB%s\n",
                    l3d_prog, T.step, l3d_trainer_epoch(&T), log.loss, log.cls, log.bbox, log.dir,
                    log.lr, log.loss_scale, log.grad_norm, sps, log.data_ms, peak_rss_mb(),
                    log.skipped ? " (skipped: overflow)" : "");
            fprintf(metrics, "{\"step\":%" PRId64 ",\"epoch\":%" PRId64 ",\"loss\":%.9g,\"loss_cls\":%.9g,"
                    "\"loss_bbox\":%.9g,\"loss_dir\":%.9g,\"lr\":%.9g,\"loss_scale\":%.9g,"
                    "\"grad_norm\":%.9g,\"skipped\":%s,\"positives\":%" PRId64 ",\"samples_per_s\":%.4g,"
                    "\"data_wait_ms\":%.4g,\"compute_ms\":%.4g,\"peak_rss_mb\":%.1f}\n",
                    T.step, l3d_trainer_epoch(&T), log.loss, log.cls, log.bbox, log.dir, log.lr,
                    log.loss_scale, log.grad_norm, log.skipped ? "true" : "false", log.positives,
                    sps, log.data_ms, log.compute_ms, peak_rss_mb());
            fflush(metrics);
            const char *tags[] = {"loss/total", "loss/cls", "loss/bbox", "loss/dir", "lr",
                                  "loss_scale", "grad_norm", "samples_per_s"};
            double vals[] = {log.loss, log.cls, log.bbox, log.dir, log.lr, log.loss_scale,
                             log.grad_norm, sps};
            for (int k = 0; k < 8; k++)
                if (l3d_tblog_scalar(&tb, T.step, tags[k], (float)vals[k], &err))
                    l3d_die_err(&err);
            if (l3d_tblog_flush(&tb, &err))
                l3d_die_err(&err);
            t_log = now;
            samples_since = 0;
        }
        int want_stop = stop_signal || (o.stop_after && done_here >= o.stop_after) ||
                        (o.time_limit > 0 && l3d_now_s() - t_start >= o.time_limit);
        if (T.step % o.ckpt_every == 0 || T.step == total || (want_stop && T.step < total))
            save(&T, &o, cfg_text, ckdir);
        if (want_stop && T.step < total) {
            stopped = 1;
            break;
        }
    }
    fclose(metrics);
    l3d_tblog_close(&tb);
    fprintf(stderr, "%s: %s at step %" PRId64 " after %.1f s\n", l3d_prog,
            stopped ? "stopped (resume with --resume auto)" : "done", T.step, l3d_now_s() - t_start);
    l3d_trainer_close(&T);
    for (int i = 0; i < n_caches; i++)
        free(caches[i]);
    free(caches);
    free(cfg_text);
    return stopped ? EXIT_STOPPED : 0;
}
