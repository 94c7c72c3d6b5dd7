#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void make_dir(char *p, size_t n, const char *tag)
{
    static int counter;
    const char *base = getenv("LIDAR3D_TMP");
    if (!base)
        base = "/tmp";
    mkdir(base, 0777);
    snprintf(p, n, "%s/%s-%ld-%d", base, tag, (long)getpid(), counter++);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p, p);
    if (system(cmd) != 0)
        abort();
}

/* A test holds at most a few directories at once: 64 live ones suffice. */
const char *tu_tmpdir(const char *tag)
{
    static char buf[64][4096];
    static int k;
    char *p = buf[k++ % 64];
    make_dir(p, 4096, tag);
    return p;
}

const char *tu_tool(const char *name)
{
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ % 8];
    const char *bin = getenv("LIDAR3D_BIN");
    snprintf(p, 4096, "%s/%s", bin ? bin : "bin", name);
    return p;
}

const char *tu_shared_data(const char *name)
{
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ % 8];
    const char *shared = getenv("LIDAR3D_SHARED");
    snprintf(p, 4096, "%s/data/%s", shared ? shared : "../shared", name);
    struct stat st;
    if (stat(p, &st) != 0) {
        printf("skipped: ../shared/data/%s not found\n", name);
        return NULL;
    }
    return p;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp);
        free(b);
        return NULL;
    }
    b[n] = 0;
    fclose(fp);
    if (len)
        *len = (size_t)n;
    return b;
}

void tu_write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n)
        abort();
    fclose(fp);
}

void tu_write_file(const char *path, const char *text) { tu_write_bytes(path, text, strlen(text)); }

int tu_run(const char *cmd, char **out, char **err)
{
    char dir[4096];
    make_dir(dir, sizeof dir, "run");
    char full[16384];
    snprintf(full, sizeof full, "( %s ) >'%s/out' 2>'%s/err'", cmd, dir, dir);
    int st = system(full);
    char p[4200];
    if (out) {
        snprintf(p, sizeof p, "%s/out", dir);
        *out = tu_read_file(p, NULL);
    }
    if (err) {
        snprintf(p, sizeof p, "%s/err", dir);
        *err = tu_read_file(p, NULL);
    }
    snprintf(full, sizeof full, "rm -rf '%s'", dir);
    if (system(full) != 0)
        abort();
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tu_copy_tree(const char *from, const char *to)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && chmod -R u+w '%s'", from, to, to);
    if (system(cmd) != 0)
        abort();
}

/* ---- the hand-made dataset ------------------------------------------ */

static void wf(const char *dir, const char *rel, const char *text)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    if (system(cmd) != 0)
        abort();
    *slash = '/';
    tu_write_file(p, text);
}

#define T0 "1000000000000000"
/* Two scenes. scene-one: samples smp0..smp2 0.2 s apart, the ego moving 10 m
 * along global x per sample, written out of time order; scene-two: smp3.
 * LIDAR_TOP sits at (1,0,2) on the ego, yawed 180°. One car in smp2 at
 * global (25,3,1), yaw 0.5: in smp2's LiDAR frame (-4,-3,-1), yaw 0.5-pi. */
void tu_write_tiny(const char *dir, const char *tables, const char *lidar, const char *prefix)
{
    char rel[512], text[8192];
    snprintf(rel, sizeof rel, "%s/sensor.json", tables);
    wf(dir, rel, "[{\"token\": \"s_top\", \"channel\": \"LIDAR_TOP\", \"modality\": \"lidar\"},\n"
                 " {\"token\": \"s_cam\", \"channel\": \"CAM_FRONT\", \"modality\": \"camera\"}]\n");
    snprintf(rel, sizeof rel, "%s/calibrated_sensor.json", tables);
    wf(dir, rel, "[{\"token\": \"c_top\", \"sensor_token\": \"s_top\", \"translation\": [1, 0, 2],"
                 " \"rotation\": [0, 0, 0, 1], \"camera_intrinsic\": []},\n"
                 " {\"token\": \"c_cam\", \"sensor_token\": \"s_cam\", \"translation\": [0, 0, 1],"
                 " \"rotation\": [1, 0, 0, 0], \"camera_intrinsic\": [[1,0,0],[0,1,0],[0,0,1]]}]\n");
    snprintf(rel, sizeof rel, "%s/scene.json", tables);
    wf(dir, rel, "[{\"token\": \"sc1\", \"log_token\": \"sc1\", \"name\": \"scene-one\", \"nbr_samples\": 3,"
                 " \"first_sample_token\": \"smp0\", \"last_sample_token\": \"smp2\", \"description\": \"\"},\n"
                 " {\"token\": \"sc2\", \"log_token\": \"sc2\", \"name\": \"scene-two\", \"nbr_samples\": 1,"
                 " \"first_sample_token\": \"smp3\", \"last_sample_token\": \"smp3\", \"description\": \"\"}]\n");
    snprintf(rel, sizeof rel, "%s/sample.json", tables);
    wf(dir, rel, "[{\"token\": \"smp3\", \"scene_token\": \"sc2\", \"timestamp\": " T0 ".5, \"prev\": \"\", \"next\": \"\"},\n"
                 " {\"token\": \"smp2\", \"scene_token\": \"sc1\", \"timestamp\": 1000000000400000, \"prev\": \"smp1\", \"next\": \"\"},\n"
                 " {\"token\": \"smp0\", \"scene_token\": \"sc1\", \"timestamp\": " T0 ", \"prev\": \"\", \"next\": \"smp1\"},\n"
                 " {\"token\": \"smp1\", \"scene_token\": \"sc1\", \"timestamp\": 1000000000200000, \"prev\": \"smp0\", \"next\": \"smp2\"}]\n");
    snprintf(rel, sizeof rel, "%s/ego_pose.json", tables);
    wf(dir, rel, "[{\"token\": \"ep0\", \"translation\": [0, 0, 0], \"rotation\": [1, 0, 0, 0], \"timestamp\": 0},\n"
                 " {\"token\": \"ep1\", \"translation\": [10, 0, 0], \"rotation\": [1, 0, 0, 0], \"timestamp\": 0},\n"
                 " {\"token\": \"ep2\", \"translation\": [20, 0, 0], \"rotation\": [1, 0, 0, 0], \"timestamp\": 0},\n"
                 " {\"token\": \"ep3\", \"translation\": [500, 0, 0], \"rotation\": [1, 0, 0, 0], \"timestamp\": 0}]\n");
    snprintf(text, sizeof text,
             "[{\"token\": \"sd0\", \"sample_token\": \"smp0\", \"ego_pose_token\": \"ep0\", \"calibrated_sensor_token\": \"c_top\","
             " \"filename\": \"%s/host-a000_lidar1_0.bin\", \"fileformat\": \"bin\", \"timestamp\": " T0 ","
             " \"is_key_frame\": true, \"prev\": \"\", \"next\": \"sd1\"},\n"
             " {\"token\": \"cam0\", \"sample_token\": \"smp0\", \"ego_pose_token\": \"ep0\", \"calibrated_sensor_token\": \"c_cam\","
             " \"filename\": \"images/cam0.jpeg\", \"fileformat\": \"jpeg\", \"timestamp\": " T0 ", \"width\": 1920, \"height\": 1080,"
             " \"is_key_frame\": true, \"prev\": \"\", \"next\": \"\"},\n"
             " {\"token\": \"sd1\", \"sample_token\": \"smp1\", \"ego_pose_token\": \"ep1\", \"calibrated_sensor_token\": \"c_top\","
             " \"filename\": \"%s/host-a000_lidar1_1.bin\", \"fileformat\": \"bin\", \"timestamp\": 1000000000200000,"
             " \"is_key_frame\": true, \"prev\": \"sd0\", \"next\": \"sd2\"},\n"
             " {\"token\": \"sd2\", \"sample_token\": \"smp2\", \"ego_pose_token\": \"ep2\", \"calibrated_sensor_token\": \"c_top\","
             " \"filename\": \"%s/host-a000_lidar1_2.bin\", \"fileformat\": \"bin\", \"timestamp\": 1000000000400000,"
             " \"is_key_frame\": true, \"prev\": \"sd1\", \"next\": \"\"},\n"
             " {\"token\": \"sd3\", \"sample_token\": \"smp3\", \"ego_pose_token\": \"ep3\", \"calibrated_sensor_token\": \"c_top\","
             " \"filename\": \"%s/host-a000_lidar1_3.bin\", \"fileformat\": \"bin\", \"timestamp\": " T0 ".5,"
             " \"is_key_frame\": true, \"prev\": \"\", \"next\": \"\"}]\n",
             prefix, prefix, prefix, prefix);
    snprintf(rel, sizeof rel, "%s/sample_data.json", tables);
    wf(dir, rel, text);
    text[0] = 0;
    const char *names[] = {"car", "pedestrian", "animal", "other_vehicle", "bus", "motorcycle",
                           "truck", "emergency_vehicle", "bicycle"};
    strcat(text, "[");
    for (int i = 0; i < 9; i++) {
        char one[200];
        snprintf(one, sizeof one, "%s{\"token\": \"cat_%s\", \"name\": \"%s\", \"description\": \"\"}",
                 i ? ",\n " : "", names[i], names[i]);
        strcat(text, one);
    }
    strcat(text, "]\n");
    snprintf(rel, sizeof rel, "%s/category.json", tables);
    wf(dir, rel, text);
    snprintf(rel, sizeof rel, "%s/instance.json", tables);
    wf(dir, rel, "[{\"token\": \"inst1\", \"category_token\": \"cat_car\", \"nbr_annotations\": 1,"
                 " \"first_annotation_token\": \"ann1\", \"last_annotation_token\": \"ann1\"}]\n");
    snprintf(rel, sizeof rel, "%s/sample_annotation.json", tables);
    wf(dir, rel, "[{\"token\": \"ann1\", \"sample_token\": \"smp2\", \"instance_token\": \"inst1\","
                 " \"translation\": [25, 3, 1], \"size\": [2, 4.5, 1.7],"
                 " \"rotation\": [0.96891242171064473, 0, 0, 0.24740395925452294],"
                 " \"num_lidar_pts\": 7, \"num_radar_pts\": 0, \"attribute_tokens\": [], \"visibility_token\": \"\","
                 " \"prev\": \"\", \"next\": \"\"}]\n");
    float pts[10] = {1, 2, 3, 100, 1, -4, 5, -6, 100, 1};
    char mk[4200];
    snprintf(mk, sizeof mk, "mkdir -p '%s/%s'", dir, lidar);
    if (system(mk) != 0)
        abort();
    for (int k = 0; k < 4; k++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/host-a000_lidar1_%d.bin", dir, lidar, k);
        tu_write_bytes(p, pts, sizeof pts);
    }
}

