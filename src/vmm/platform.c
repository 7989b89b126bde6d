#include "vmm/platform.h"

#include <string.h>
#include <unistd.h>

#include "util/evloop.h"

void platform_init(struct platform *p, const struct accel_ops *accel, struct accel_vm *avm)
{
    memset(p, 0, sizeof(*p));
    p->accel = accel;
    p->avm = avm;
    pthread_mutex_init(&p->lock, NULL);
}

static void msi_release(void *ctx, int handle)
{
    struct platform *p = ctx;
    if (handle < 0 || handle >= PLATFORM_MAX_MSI)
        return;
    struct platform_msi *m = &p->msi[handle];
    pthread_mutex_lock(&p->lock);
    if (m->in_use) {
        p->accel->irqfd(p->avm, m->fd, m->gsi, false);
        close(m->fd);
        m->in_use = false;
    }
    pthread_mutex_unlock(&p->lock);
}

void platform_destroy(struct platform *p)
{
    for (int i = 0; i < PLATFORM_MAX_MSI; i++)
        msi_release(p, i);
    pthread_mutex_destroy(&p->lock);
}

static int msi_alloc(void *ctx, int *handle)
{
    struct platform *p = ctx;
    pthread_mutex_lock(&p->lock);
    int ret = -ENOSPC;
    for (int i = 0; i < PLATFORM_MAX_MSI; i++) {
        struct platform_msi *m = &p->msi[i];
        if (m->in_use)
            continue;
        ret = p->accel->msi_route_add(p->avm, &m->gsi);
        if (!ret) {
            m->fd = eventfd_create();
            ret = m->fd < 0 ? m->fd : p->accel->irqfd(p->avm, m->fd, m->gsi, true);
            if (ret && m->fd >= 0)
                close(m->fd);
        }
        if (!ret) {
            m->in_use = true;
            *handle = i;
        }
        break;
    }
    pthread_mutex_unlock(&p->lock);
    return ret == -ENOSPC ? err_set(ret, "out of MSI vectors") : ret;
}

static int msi_set(void *ctx, int handle, uint64_t address, uint32_t data, bool enabled)
{
    struct platform *p = ctx;
    if (handle < 0 || handle >= PLATFORM_MAX_MSI || !p->msi[handle].in_use)
        return -EINVAL;
    return p->accel->msi_route_set(p->avm, p->msi[handle].gsi, address, data, enabled);
}

static void msi_fire(void *ctx, int handle)
{
    struct platform *p = ctx;
    if (handle >= 0 && handle < PLATFORM_MAX_MSI && p->msi[handle].in_use)
        eventfd_signal(p->msi[handle].fd);
}

const struct msi_ops platform_msi_ops = {
    .alloc = msi_alloc,
    .set = msi_set,
    .fire = msi_fire,
    .release = msi_release,
};

int platform_ioeventfd(void *ctx, int fd, uint64_t address, unsigned len, bool assign)
{
    struct platform *p = ctx;
    return p->accel->ioeventfd(p->avm, fd, address, len, assign);
}
