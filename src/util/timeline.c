#include "timeline.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

#define TIMELINE_MAX 24

struct timeline_entry {
    const char *step;
    uint64_t ns;
};

static struct timeline_entry entries[TIMELINE_MAX];
static atomic_uint nr_entries;
static atomic_bool reported;
static uint64_t cpu_before_start_ns;

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void timeline_mark(const char *step)
{
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    unsigned i = atomic_fetch_add(&nr_entries, 1);
    if (i >= TIMELINE_MAX)
        return;
    if (i == 0) /* exec, the loader and libc's start-up: this process's CPU so far */
        cpu_before_start_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    entries[i] = (struct timeline_entry){.step = step, .ns = now};
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

void timeline_report(const char *step)
{
    if (atomic_exchange(&reported, true))
        return;
    timeline_mark(step);
    unsigned n = atomic_load(&nr_entries);
    n = n < TIMELINE_MAX ? n : TIMELINE_MAX;
    if (n < 2 || log_get_level() < LOG_INFO)
        return;
    char line[1024];
    int len = snprintf(line, sizeof(line), "%s at monotonic %.3f ms, %.2f ms of CPU before it;",
                       entries[0].step, ms(entries[0].ns), ms(cpu_before_start_ns));
    for (unsigned i = 1; i < n && len > 0 && (size_t)len < sizeof(line); i++)
        len += snprintf(line + len, sizeof(line) - (size_t)len, "%s %s +%.2f", i > 1 ? "," : "",
                        entries[i].step, ms(entries[i].ns - entries[i - 1].ns));
    log_info("start-up: %s = %.2f ms after %s", line, ms(entries[n - 1].ns - entries[0].ns),
             entries[0].step);
}
