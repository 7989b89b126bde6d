#include "vmm/image_copy.h"

#include <string.h>
#include <time.h>

#include "util/thread.h"

void image_copy_init(struct image_copy *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->open_cond, NULL);
}

void image_copy_destroy(struct image_copy *c)
{
    pthread_cond_destroy(&c->open_cond);
    pthread_mutex_destroy(&c->lock);
}

static double monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *copy_timed(void *arg)
{
    struct image_copy *c = arg;
    double start = monotonic_ms();
    boot_copy_run(&c->copy);
    c->copy_ms = monotonic_ms() - start;
    return NULL;
}

int image_copy_start(struct image_copy *c, const struct boot_config *cfg,
                     const struct boot_layout *layout, const struct guest_mem *gm)
{
    int ret = boot_copy_plan(cfg, layout, gm, &c->copy);
    if (ret)
        return ret;
    c->running = c->closed = true;
    for (unsigned i = 0; i < c->copy.nr; i++)
        c->bytes += c->copy.parts[i].mem_size;
    /* Without a thread (a host at its limit) the copy still happens, in
     * the caller: slower, not wrong. */
    c->threaded = thread_create(&c->thread, copy_timed, c) == 0;
    if (!c->threaded)
        copy_timed(c);
    return 0;
}

void image_copy_finish(struct image_copy *c, const struct guest_mem *gm)
{
    if (!c->running)
        return;
    if (c->threaded)
        pthread_join(c->thread, NULL);
    c->running = false;
    boot_copy_written(&c->copy, gm);
}

void image_copy_open(struct image_copy *c)
{
    pthread_mutex_lock(&c->lock);
    c->closed = false;
    pthread_cond_broadcast(&c->open_cond);
    pthread_mutex_unlock(&c->lock);
}

void image_copy_end(struct image_copy *c, const struct guest_mem *gm)
{
    image_copy_finish(c, gm);
    image_copy_open(c);
}

void image_copy_wait(struct image_copy *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->closed)
        pthread_cond_wait(&c->open_cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
}
