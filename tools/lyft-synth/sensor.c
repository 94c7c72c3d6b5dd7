#include "tools/lyft-synth/sensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEG (3.14159265358979323846 / 180)

/* Piecewise linear in the beam index: 15 % of the beams from -25 to -8
 * degrees, 70 % from -8 to +2 (the dense band near the horizon), 15 % from +2
 * to +15. */
double syn_beam_elevation_deg(int b, int n)
{
    double u = n > 1 ? (double)b / (n - 1) : 0.5;
    if (u < 0.15)
        return -25 + (u / 0.15) * 17;
    if (u < 0.85)
        return -8 + ((u - 0.15) / 0.70) * 10;
    return 2 + ((u - 0.85) / 0.15) * 13;
}

int syn_sensor_init(syn_sensor *s, int beams, int steps, double min_range, double max_range,
                    double noise_sd)
{
    memset(s, 0, sizeof *s);
    s->beams = beams;
    s->steps = steps;
    s->min_range = min_range;
    s->max_range = max_range;
    s->noise_sd = noise_sd;
    s->el_sin = malloc((size_t)beams * sizeof(double));
    s->el_cos = malloc((size_t)beams * sizeof(double));
    s->az_sin = malloc((size_t)steps * sizeof(double));
    s->az_cos = malloc((size_t)steps * sizeof(double));
    if (!s->el_sin || !s->el_cos || !s->az_sin || !s->az_cos) {
        syn_sensor_free(s);
        return -1;
    }
    for (int b = 0; b < beams; b++) {
        double e = syn_beam_elevation_deg(b, beams) * DEG;
        s->el_sin[b] = sin(e);
        s->el_cos[b] = cos(e);
    }
    for (int k = 0; k < steps; k++) {
        double a = 2 * 3.14159265358979323846 * k / steps;
        s->az_sin[k] = sin(a);
        s->az_cos[k] = cos(a);
    }
    return 0;
}

void syn_sensor_free(syn_sensor *s)
{
    free(s->el_sin);
    free(s->el_cos);
    free(s->az_sin);
    free(s->az_cos);
    memset(s, 0, sizeof *s);
}

size_t syn_sensor_scan(const syn_sensor *s, const rc_scene *sc, const double R[9], syn_rng *rng,
                       float *pts, uint32_t *hits, int n_owners)
{
    size_t n = 0;
    for (int k = 0; k < s->steps; k++) {
        double ca = s->az_cos[k], sa = s->az_sin[k];
        for (int b = 0; b < s->beams; b++) {
            double ds[3] = {s->el_cos[b] * ca, s->el_cos[b] * sa, s->el_sin[b]};
            double dw[3] = {R[0] * ds[0] + R[1] * ds[1] + R[2] * ds[2],
                            R[3] * ds[0] + R[4] * ds[1] + R[5] * ds[2],
                            R[6] * ds[0] + R[7] * ds[1] + R[8] * ds[2]};
            double t;
            int owner = rc_cast(sc, dw, &t);
            if (owner == RC_NONE || t < s->min_range)
                continue;
            if (s->noise_sd > 0)
                t += s->noise_sd * syn_normal_trunc(rng, SYN_NOISE_CLIP);
            if (owner >= 0 && owner < n_owners)
                hits[owner]++;
            float *p = pts + 5 * n++;
            p[0] = (float)(ds[0] * t);
            p[1] = (float)(ds[1] * t);
            p[2] = (float)(ds[2] * t);
            p[3] = SYN_INTENSITY;
            p[4] = (float)b;
        }
    }
    return n;
}
