#include "tools/lyft-synth/tables.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tools/common/cli.h"
#include "tools/lyft-synth/classes.h"
#include "tools/lyft-synth/jsonw.h"
#include "tools/lyft-synth/rng.h"


static const struct { const char *channel, *modality; } sensors[10] = {
    {"CAM_FRONT", "camera"}, {"CAM_FRONT_ZOOMED", "camera"}, {"CAM_FRONT_LEFT", "camera"},
    {"CAM_FRONT_RIGHT", "camera"}, {"CAM_BACK", "camera"}, {"CAM_BACK_LEFT", "camera"},
    {"CAM_BACK_RIGHT", "camera"}, {"LIDAR_TOP", "lidar"}, {"LIDAR_FRONT_LEFT", "lidar"},
    {"LIDAR_FRONT_RIGHT", "lidar"},
};
enum { LIDAR_TOP_SENSOR = 7 };

typedef struct ctx {
    const syn_dataset *d;
    jw j;
    char tok[65];
} ctx;

/* Writes key: token(tag, index), or "" when index is SYN_NONE. */
static void token(ctx *c, const char *key, int tag, uint32_t index)
{
    if (index == SYN_NONE)
        c->tok[0] = 0;
    else
        syn_token(c->tok, c->d->o.seed, tag, index);
    jw_str(&c->j, key, c->tok);
}

/* Scenes and logs share tokens (one scene per log, as in Lyft). */
static void write_scene(ctx *c, uint32_t i)
{
    const syn_scene *sc = &c->d->scenes[i];
    jw_str(&c->j, "description", "");
    token(c, "first_sample_token", SYN_TAG_SAMPLE, sc->first_sample);
    token(c, "last_sample_token", SYN_TAG_SAMPLE, sc->first_sample + sc->n_samples - 1);
    token(c, "log_token", SYN_TAG_LOG, i);
    jw_str(&c->j, "name", sc->name);
    jw_int(&c->j, "nbr_samples", sc->n_samples);
    token(c, "token", SYN_TAG_LOG, i);
}

static void write_log(ctx *c, uint32_t i)
{
    const syn_scene *sc = &c->d->scenes[i];
    time_t secs = (time_t)(sc->t0_q / 4000000);
    struct tm tm;
    char date[32];
    gmtime_r(&secs, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    jw_str(&c->j, "date_captured", date);
    jw_str(&c->j, "location", "Palo Alto");
    jw_str(&c->j, "logfile", "");
    token(c, "token", SYN_TAG_LOG, i);
    jw_str(&c->j, "vehicle", syn_host_name(sc->host));
}

static uint32_t prev_sample(const syn_dataset *d, uint32_t s)
{
    return d->samples[s].k ? s - 1 : SYN_NONE;
}

static uint32_t next_sample(const syn_dataset *d, uint32_t s)
{
    const syn_sample *x = &d->samples[s];
    return x->k + 1 < d->scenes[x->scene].n_samples ? s + 1 : SYN_NONE;
}

static void write_sample(ctx *c, uint32_t s)
{
    const syn_sample *x = &c->d->samples[s];
    token(c, "next", SYN_TAG_SAMPLE, next_sample(c->d, s));
    token(c, "prev", SYN_TAG_SAMPLE, prev_sample(c->d, s));
    token(c, "scene_token", SYN_TAG_LOG, x->scene);
    jw_num(&c->j, "timestamp", syn_ts_us(x->ts_q));
    token(c, "token", SYN_TAG_SAMPLE, s);
}

/* LIDAR_TOP only; a dangling-prev defect points prev at a token no record has. */
static void write_sample_data(ctx *c, uint32_t s)
{
    const syn_sample *x = &c->d->samples[s];
    char file[256];
    syn_lidar_filename(c->d, s, file, sizeof file);
    token(c, "calibrated_sensor_token", SYN_TAG_CALIB, (uint32_t)c->d->scenes[x->scene].host);
    token(c, "ego_pose_token", SYN_TAG_EGO_POSE, s);
    jw_str(&c->j, "filename", file);
    jw_str(&c->j, "fileformat", "bin");
    jw_bool(&c->j, "is_key_frame", 1);
    token(c, "next", SYN_TAG_SAMPLE_DATA, next_sample(c->d, s));
    if (x->defects & SYN_DEFECT_DANGLING)
        token(c, "prev", SYN_TAG_DANGLING, s);
    else
        token(c, "prev", SYN_TAG_SAMPLE_DATA, prev_sample(c->d, s));
    token(c, "sample_token", SYN_TAG_SAMPLE, s);
    jw_num(&c->j, "timestamp", syn_ts_us(x->ts_q));
    token(c, "token", SYN_TAG_SAMPLE_DATA, s);
}

static void write_ego_pose(ctx *c, uint32_t s)
{
    const syn_sample *x = &c->d->samples[s];
    jw_nums(&c->j, "rotation", x->ego_q, 4);
    jw_num(&c->j, "timestamp", syn_ts_us(x->ts_q));
    token(c, "token", SYN_TAG_EGO_POSE, s);
    jw_nums(&c->j, "translation", x->ego_t, 3);
}

static void write_calib(ctx *c, uint32_t host)
{
    const syn_calib *cal = &c->d->calib[host];
    jw_arr_begin(&c->j, "camera_intrinsic");
    jw_arr_end(&c->j);
    jw_nums(&c->j, "rotation", cal->q, 4);
    token(c, "sensor_token", SYN_TAG_SENSOR, LIDAR_TOP_SENSOR);
    token(c, "token", SYN_TAG_CALIB, host);
    jw_nums(&c->j, "translation", cal->t, 3);
}

static void write_annotation(ctx *c, uint32_t a)
{
    const syn_dataset *d = c->d;
    const syn_ann *x = &d->ann[a];
    const syn_instance *in = &d->inst[x->inst];
    jw_arr_begin(&c->j, "attribute_tokens");
    syn_token(c->tok, d->o.seed, SYN_TAG_ATTRIBUTE, (uint64_t)in->attr);
    jw_string(&c->j, c->tok);
    jw_arr_end(&c->j);
    token(c, "instance_token", SYN_TAG_INSTANCE, x->inst);
    token(c, "next", SYN_TAG_ANN, x->next);
    jw_int(&c->j, "num_lidar_pts", x->num_pts);
    jw_int(&c->j, "num_radar_pts", 0);
    token(c, "prev", SYN_TAG_ANN, x->prev);
    jw_nums(&c->j, "rotation", x->q, 4);
    token(c, "sample_token", SYN_TAG_SAMPLE, x->sample);
    jw_nums(&c->j, "size", (double[3]){in->lwh[1], in->lwh[0], in->lwh[2]}, 3);   /* w, l, h */
    token(c, "token", SYN_TAG_ANN, a);
    jw_nums(&c->j, "translation", x->centre, 3);
    jw_str(&c->j, "visibility_token", "");
}

static void write_instance(ctx *c, uint32_t i)
{
    const syn_instance *in = &c->d->inst[i];
    token(c, "category_token", SYN_TAG_CATEGORY, (uint32_t)in->cls);
    token(c, "first_annotation_token", SYN_TAG_ANN, in->first_ann);
    token(c, "last_annotation_token", SYN_TAG_ANN, in->last_ann);
    jw_int(&c->j, "nbr_annotations", in->n_ann);
    token(c, "token", SYN_TAG_INSTANCE, i);
}

static void write_attribute(ctx *c, uint32_t i)
{
    jw_str(&c->j, "description", "");
    jw_str(&c->j, "name", syn_attribute_names[i]);
    token(c, "token", SYN_TAG_ATTRIBUTE, i);
}

static void write_category(ctx *c, uint32_t i)
{
    jw_str(&c->j, "description", "");
    jw_str(&c->j, "name", syn_classes[i].name);
    token(c, "token", SYN_TAG_CATEGORY, i);
}

static void write_sensor(ctx *c, uint32_t i)
{
    jw_str(&c->j, "channel", sensors[i].channel);
    jw_str(&c->j, "modality", sensors[i].modality);
    token(c, "token", SYN_TAG_SENSOR, i);
}

/* Lyft's four visibility levels, tokens "1" to "4" as in the real table. */
static void write_visibility(ctx *c, uint32_t i)
{
    static const char *const level[4] = {"v0-40", "v40-60", "v60-80", "v80-100"};
    static const char *const range[4] = {"0 and 40", "40 and 60", "60 and 80", "80 and 100"};
    char text[80], tok[16];
    snprintf(text, sizeof text, "visibility of whole object is between %s%%", range[i]);
    snprintf(tok, sizeof tok, "%u", i + 1);
    jw_str(&c->j, "description", text);
    jw_str(&c->j, "level", level[i]);
    jw_str(&c->j, "token", tok);
}

static void write_map(ctx *c, uint32_t i)
{
    (void)i;
    jw_str(&c->j, "category", "semantic_prior");
    jw_str(&c->j, "filename", "maps/map_raster_palo_alto.png");
    jw_arr_begin(&c->j, "log_tokens");
    for (int s = 0; s < c->d->n_scenes; s++) {
        syn_token(c->tok, c->d->o.seed, SYN_TAG_LOG, (uint64_t)s);
        jw_string(&c->j, c->tok);
    }
    jw_arr_end(&c->j);
    token(c, "token", SYN_TAG_MAP, 0);
}

typedef struct table_def {
    const char *name;
    void (*write)(ctx *c, uint32_t row);
    uint32_t fixed_rows;   /* 0: depends on the dataset */
} table_def;

/* In the order written (and packed). */
static const table_def tables[SYN_NTABLES] = {
    {"attribute", write_attribute, SYN_NATTR}, {"calibrated_sensor", write_calib, SYN_NHOSTS},
    {"category", write_category, SYN_NCLASS},  {"ego_pose", write_ego_pose, 0},
    {"instance", write_instance, 0},           {"log", write_log, 0},
    {"map", write_map, 1},                     {"sample", write_sample, 0},
    {"sample_annotation", write_annotation, 0}, {"sample_data", write_sample_data, 0},
    {"scene", write_scene, 0},                 {"sensor", write_sensor, 10},
    {"visibility", write_visibility, 4},
};

static uint32_t rows_of(const syn_dataset *d, const table_def *t)
{
    if (t->fixed_rows)
        return t->fixed_rows;   /* calibrated_sensor: one per host, written if in use */
    if (t->write == write_scene || t->write == write_log)
        return (uint32_t)d->n_scenes;
    if (t->write == write_annotation)
        return d->n_ann;
    if (t->write == write_instance)
        return d->n_inst;
    return d->n_samples;        /* sample, sample_data, ego_pose */
}

int syn_write_tables(const syn_dataset *d, const char *dir, volatile sig_atomic_t *stop,
                     l3d_err *err)
{
    ctx c = {.d = d};
    double total = 0, done = 0;
    for (int t = 0; t < SYN_NTABLES; t++)
        total += rows_of(d, &tables[t]);
    l3d_progress prog;
    l3d_progress_begin(&prog, "writing tables", "records", total);
    int rc = L3D_OK;
    for (int t = 0; t < SYN_NTABLES && !rc; t++) {
        const table_def *def = &tables[t];
        if ((rc = jw_open(&c.j, dir, def->name, err)))
            break;
        uint32_t n = rows_of(d, def);
        for (uint32_t i = 0; i < n && !rc; i++) {
            if (def->write == write_calib && !d->calib[i].used)
                continue;
            if ((i & 4095) == 0) {
                l3d_progress_update(&prog, done + i);
                if (*stop)
                    rc = l3d_fail(err, L3D_EINTERNAL, "interrupted");
            }
            jw_begin(&c.j);
            def->write(&c, i);
            jw_end(&c.j);
        }
        done += n;
        if (rc)
            jw_abort(&c.j);
        else
            rc = jw_close(&c.j, err);
    }
    l3d_progress_end(&prog);
    return rc;
}

const char *syn_table_name(int t) { return tables[t].name; }
