/* lease_clock.c - the real-time check of a tick-counted lease (lease_clock.h).
 *
 * A read served at tick t uses a round sent at tick t0 > t - window, so it lies less than
 * (now - time of tick t - window + 1) after that round; that must stay below the
 * followers' minimum wait (election_ticks - 1 periods) less the drift. With punctual ticks
 * the span is below window periods, one period under that bound (the margin's spare tick). */
#include "actors/lease_clock.h"

#include <stdlib.h>

struct lease_clock {
    uint64_t *at; /* ring: time of each of the last `window` ticks */
    unsigned window;
    unsigned next;
    uint64_t bound_ms;
};

lease_clock_t *lease_clock_new(unsigned tick_ms, unsigned election_ticks, unsigned margin,
                               unsigned drift_ms, uint64_t now_ms)
{
    if (margin >= election_ticks || tick_ms == 0)
        return NULL;
    uint64_t wait = (uint64_t)(election_ticks - 1) * tick_ms;
    if (wait <= drift_ms)
        return NULL;
    lease_clock_t *lc = calloc(1, sizeof *lc);
    if (!lc)
        return NULL;
    lc->window = election_ticks - margin;
    lc->bound_ms = wait - drift_ms;
    lc->at = malloc(lc->window * sizeof *lc->at);
    if (!lc->at) {
        free(lc);
        return NULL;
    }
    for (unsigned i = 0; i < lc->window; i++)
        lc->at[i] = now_ms; /* no lease exists before the first ticks anyway */
    return lc;
}

void lease_clock_destroy(lease_clock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->at);
    free(*self_p);
    *self_p = NULL;
}

void lease_clock_tick(lease_clock_t *lc, uint64_t now_ms)
{
    lc->at[lc->next] = now_ms;
    lc->next = (lc->next + 1) % lc->window;
}

bool lease_clock_ok(const lease_clock_t *lc, uint64_t now_ms)
{
    /* the oldest of the last `window` ticks is the one the next tick overwrites */
    uint64_t oldest = lc->at[lc->next];
    return now_ms < oldest || now_ms - oldest < lc->bound_ms;
}
