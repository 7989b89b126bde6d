#include "vmm/platform.h"

#include <string.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"

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
    if (m->in_use && m->fd >= 0) {
        p->accel->irqfd(p->avm, m->fd, m->gsi, false);
        close(m->fd);
    }
    m->in_use = false;
    pthread_mutex_unlock(&p->lock);
}

void platform_destroy(struct platform *p)
{
    for (int i = 0; i < PLATFORM_MAX_MSI; i++)
        msi_release(p, i);
    pthread_mutex_destroy(&p->lock);
}

/* With irqfds (KVM), an MSI is a GSI routed to its message and an eventfd
 * bound to the GSI, so any thread fires it with a write; otherwise the
 * message is kept here and injected directly. */
static bool use_irqfd(const struct platform *p)
{
    return p->accel->caps & ACCEL_CAP_IRQFD;
}

static int msi_bind(struct platform *p, struct platform_msi *m)
{
    int ret = p->accel->msi_route_add(p->avm, &m->gsi);
    if (ret)
        return ret;
    m->fd = eventfd_create();
    ret = m->fd < 0 ? m->fd : p->accel->irqfd(p->avm, m->fd, m->gsi, true);
    if (ret && m->fd >= 0)
        close(m->fd);
    return ret;
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
        memset(m, 0, sizeof(*m));
        m->fd = -1;
        ret = use_irqfd(p) ? msi_bind(p, m) : 0;
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
    struct platform_msi *m = &p->msi[handle];
    if (use_irqfd(p))
        return p->accel->msi_route_set(p->avm, m->gsi, address, data, enabled);
    pthread_mutex_lock(&p->lock);
    m->address = address;
    m->data = data;
    m->enabled = enabled;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static void msi_fire(void *ctx, int handle)
{
    struct platform *p = ctx;
    if (handle < 0 || handle >= PLATFORM_MAX_MSI || !p->msi[handle].in_use)
        return;
    struct platform_msi *m = &p->msi[handle];
    if (use_irqfd(p)) {
        eventfd_signal(m->fd);
        return;
    }
    pthread_mutex_lock(&p->lock);
    bool enabled = m->enabled;
    uint64_t address = m->address;
    uint32_t data = m->data;
    pthread_mutex_unlock(&p->lock);
    if (enabled && p->accel->msi_inject(p->avm, address, data))
        log_guest("cannot deliver an MSI to %#llx: %s", (unsigned long long)address,
                  err_msg());
}

const struct msi_ops platform_msi_ops = {
    .alloc = msi_alloc,
    .set = msi_set,
    .fire = msi_fire,
    .release = msi_release,
};

int platform_ioeventfd(void *ctx, int fd, uint64_t address, unsigned len,
                       const uint64_t *datamatch, bool assign)
{
    struct platform *p = ctx;
    return p->accel->ioeventfd(p->avm, fd, address, len, datamatch, assign);
}

int platform_irqfd(void *ctx, uint32_t gsi, int *fd)
{
    struct platform *p = ctx;
    if (!use_irqfd(p))
        return -ENOTSUP;
    int efd = eventfd_create();
    if (efd < 0)
        return efd;
    int ret = p->accel->irqfd(p->avm, efd, gsi, true);
    if (ret) {
        close(efd);
        return err_prefix(ret, "irqfd for GSI %u", gsi);
    }
    *fd = efd;
    return 0;
}

void platform_irqfd_release(void *ctx, uint32_t gsi, int fd)
{
    struct platform *p = ctx;
    if (fd < 0)
        return;
    p->accel->irqfd(p->avm, fd, gsi, false);
    close(fd);
}
