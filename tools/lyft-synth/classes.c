#include "tools/lyft-synth/classes.h"

/* Frequencies are the Lyft train annotation counts per class (638 179 in all:
 * cars 84 %, a few hundred animals and emergency vehicles). Shapes are chosen so
 * that classes of similar size still differ: a car has a cabin narrower and
 * shorter than its body, a truck a cab, a gap and a raised trailer, a bus is
 * one tall block, a pedestrian a cylinder with a head, and so on. */
const syn_class syn_classes[SYN_NCLASS] = {
    [SYN_BICYCLE] = {"bicycle", {1.76, 0.63, 1.44}, {0.10, 0.12, 0.08}, 20928, SYN_BIKE, 0.3, 2, {
        {0, -0.50f, 0.50f, -0.12f, 0.12f, 0.00f, 0.55f},   /* wheels and frame */
        {1, -0.30f, 0.02f, -0.50f, 0.50f, 0.40f, 1.00f},   /* rider */
    }},
    [SYN_MOTORCYCLE] = {"motorcycle", {2.35, 0.96, 1.59}, {0.10, 0.12, 0.08}, 818, SYN_ROAD, 0.4, 2, {
        {0, -0.48f, 0.48f, -0.28f, 0.28f, 0.00f, 0.60f},   /* machine */
        {1, -0.28f, 0.08f, -0.50f, 0.50f, 0.45f, 1.00f},   /* rider */
    }},
    [SYN_PEDESTRIAN] = {"pedestrian", {0.80, 0.76, 1.76}, {0.12, 0.12, 0.07}, 24935, SYN_SIDEWALK, 0, 2, {
        {1, -0.36f, 0.36f, -0.36f, 0.36f, 0.00f, 0.87f},   /* legs and torso */
        {1, -0.15f, 0.15f, -0.15f, 0.15f, 0.87f, 1.00f},   /* head */
    }},
    [SYN_ANIMAL] = {"animal", {0.73, 0.35, 0.50}, {0.25, 0.25, 0.25}, 186, SYN_SIDEWALK, 0, 3, {
        {0, -0.50f, 0.28f, -0.50f, 0.50f, 0.40f, 0.80f},   /* body */
        {0, 0.28f, 0.50f, -0.30f, 0.30f, 0.55f, 1.00f},    /* head */
        {0, -0.44f, 0.22f, -0.30f, 0.30f, 0.00f, 0.40f},   /* legs */
    }},
    [SYN_CAR] = {"car", {4.75, 1.92, 1.71}, {0.08, 0.06, 0.09}, 534911, SYN_ROAD, 0.5, 2, {
        {0, -0.50f, 0.50f, -0.50f, 0.50f, 0.00f, 0.55f},   /* body */
        {0, -0.32f, 0.18f, -0.44f, 0.44f, 0.55f, 1.00f},   /* cabin */
    }},
    [SYN_EMERGENCY] = {"emergency_vehicle", {6.52, 2.42, 2.34}, {0.12, 0.06, 0.10}, 132, SYN_ROAD, 0.2, 3, {
        {0, -0.50f, 0.24f, -0.50f, 0.50f, 0.00f, 0.90f},   /* box body */
        {0, 0.24f, 0.50f, -0.48f, 0.48f, 0.00f, 0.62f},    /* cab and bonnet */
        {0, 0.04f, 0.20f, -0.35f, 0.35f, 0.90f, 1.00f},    /* light bar */
    }},
    [SYN_BUS] = {"bus", {12.70, 2.92, 3.42}, {0.10, 0.04, 0.05}, 8729, SYN_ROAD, 0.15, 1, {
        {0, -0.50f, 0.50f, -0.50f, 0.50f, 0.08f, 1.00f},   /* one tall block */
    }},
    [SYN_OTHER_VEHICLE] = {"other_vehicle", {8.17, 2.75, 3.20}, {0.22, 0.08, 0.15}, 33376, SYN_ROAD, 0.5, 2, {
        {0, -0.50f, 0.27f, -0.50f, 0.50f, 0.06f, 1.00f},   /* box body */
        {0, 0.30f, 0.50f, -0.47f, 0.47f, 0.05f, 0.72f},    /* cab, lower, after a gap */
    }},
    [SYN_TRUCK] = {"truck", {10.24, 2.84, 3.44}, {0.20, 0.06, 0.10}, 14164, SYN_ROAD, 0.4, 3, {
        {0, 0.33f, 0.50f, -0.50f, 0.50f, 0.05f, 0.92f},    /* cab */
        {0, -0.50f, 0.30f, -0.50f, 0.50f, 0.32f, 1.00f},   /* raised trailer */
        {0, -0.46f, -0.22f, -0.45f, 0.45f, 0.00f, 0.32f},  /* rear wheels */
    }},
};

const char *const syn_attribute_names[SYN_NATTR] = {
    "object_action_lane_change_right", "object_action_running", "object_action_lane_change_left",
    "object_action_parked", "object_action_standing", "object_action_right_turn",
    "object_action_gliding_on_wheels", "object_action_loss_of_control", "object_action_u_turn",
    "object_action_sitting", "object_action_walking", "object_action_stopped",
    "object_action_left_turn", "object_action_reversing", "is_stationary",
    "object_action_driving_straight_forward", "object_action_abnormal_or_traffic_violation",
    "object_action_other_motion",
};
