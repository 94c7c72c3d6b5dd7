/* The nine Lyft classes as lyft-synth models them: size statistics (the means
 * are the SSN anchor sizes, ssn-model.md §6.1), how often each occurs (Lyft
 * train annotation counts), where it lives on the road and the simple solid
 * shape its LiDAR returns come from. Class k is l3d_lyft_classes[k]. */
#ifndef LIDAR3D_SYNTH_CLASSES_H
#define LIDAR3D_SYNTH_CLASSES_H

#define SYN_NCLASS 9
#define SYN_MAX_PARTS 4

enum syn_class_id {
    SYN_BICYCLE, SYN_MOTORCYCLE, SYN_PEDESTRIAN, SYN_ANIMAL, SYN_CAR,
    SYN_EMERGENCY, SYN_BUS, SYN_OTHER_VEHICLE, SYN_TRUCK,
};

/* Where an object of the class may be put (see world.c). */
enum syn_habitat { SYN_ROAD, SYN_BIKE, SYN_SIDEWALK };

/* One solid part, in fractions of the box: x along the length (-0.5 rear ..
 * 0.5 front), y along the width (-0.5 .. 0.5), z up from the bottom (0 .. 1).
 * A cylinder is vertical, centred in its x/y range, with the radius half the
 * smaller of the two ranges (in metres). */
typedef struct syn_part {
    int cylinder;
    float x0, x1, y0, y1, z0, z1;
} syn_part;

typedef struct syn_class {
    const char *name;
    double mean_lwh[3];   /* length (dx), width (dy), height (dz), metres */
    double sd_frac[3];    /* standard deviation / mean; sizes drawn within +-2 sd */
    double freq;          /* relative frequency (Lyft train annotations) */
    int habitat;
    double p_parked;      /* road and bike classes: chance of a parked object */
    int n_parts;
    syn_part parts[SYN_MAX_PARTS];
} syn_class;

extern const syn_class syn_classes[SYN_NCLASS];

/* Lyft attribute names (attribute.json), and the ones objects get. */
#define SYN_NATTR 18
extern const char *const syn_attribute_names[SYN_NATTR];
enum { SYN_ATTR_PARKED = 3, SYN_ATTR_STANDING = 4, SYN_ATTR_WALKING = 10, SYN_ATTR_STOPPED = 11,
       SYN_ATTR_DRIVING = 15 };

#endif
