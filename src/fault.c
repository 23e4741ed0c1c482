/*
 * fault.c — the countdown behind the fault seams (fault.h): armed by a test,
 * counted down by seam calls on any thread, firing once.
 */
#include "config.h"

#include "fault.h"

/* On a cache line of its own (the alignment of the next variable keeps
 * everything else off it): every seam reads it, nothing but a test
 * writes it. */
_Alignas(64) _Atomic long fault_countdown;

/* The site of the call that failed; NULL until one does. */
_Alignas(64) static _Atomic(const char *) fault_site;

void fault_arm(long n)
{
    /* release: the cleared site is seen by whoever sees the countdown */
    store_release(&fault_site, NULL);
    store_release(&fault_countdown, n > 0 ? n : 0);
}

const char *fault_fired(void)
{
    return load_acquire(&fault_site); /* pairs with the release in fault_fire */
}

bool fault_fire(const char *site)
{
    long n = load_relaxed(&fault_countdown);
    /* Count down, never below zero, so that exactly one call (the one
     * taking it from 1 to 0) fails even when procs and helper threads
     * race here.  acq_rel: orders the decrements of racing threads; the
     * values carry no other data. */
    while (n > 0) {
        if (cas_acq_rel(&fault_countdown, &n, n - 1)) {
            if (n != 1)
                return false;
            /* release: the test reads it (acquire) after joining the
             * run's threads, or from the same thread */
            store_release(&fault_site, site);
            return true;
        }
    }
    return false;
}
