/*
 * clock.h — the monotonic clock in seconds: every duration, age and deadline in
 * the server is measured with it (wall-clock steps must not bend them).
 */
#ifndef FITD_CLOCK_H
#define FITD_CLOCK_H

#include <time.h>

static inline double clock_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
