#include "virtio/transport_pci.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "arch/x86_64/layout.h"
#include "util/log.h"
#include "util/util.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040 /* modern device IDs: 0x1040 + type */

/* BAR layout. */
#define BAR_COMMON 0x0000
#define BAR_COMMON_SIZE 0x38
#define BAR_ISR 0x1000
#define BAR_DEVICE 0x2000
#define BAR_DEVICE_SIZE 0x1000
#define BAR_NOTIFY 0x3000
#define NOTIFY_MULTIPLIER 4
#define BAR_MSIX_TABLE 0x4000
#define BAR_MSIX_PBA 0x5000

/* Capability types. */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4
#define CAP_PCI_CFG 5

/* Common configuration fields. */
#define CC_DEVICE_FEATURE_SELECT 0x00
#define CC_DEVICE_FEATURE 0x04
#define CC_DRIVER_FEATURE_SELECT 0x08
#define CC_DRIVER_FEATURE 0x0c
#define CC_CONFIG_MSIX_VECTOR 0x10
#define CC_NUM_QUEUES 0x12
#define CC_DEVICE_STATUS 0x14
#define CC_CONFIG_GENERATION 0x15
#define CC_QUEUE_SELECT 0x16
#define CC_QUEUE_SIZE 0x18
#define CC_QUEUE_MSIX_VECTOR 0x1a
#define CC_QUEUE_ENABLE 0x1c
#define CC_QUEUE_NOTIFY_OFF 0x1e
#define CC_QUEUE_DESC 0x20
#define CC_QUEUE_DRIVER 0x28
#define CC_QUEUE_DEVICE 0x30

#define ISR_QUEUE 1
#define ISR_CONFIG 2

static struct virtio_pci *to_vp(struct pci_device *dev)
{
    return (struct virtio_pci *)((char *)dev - offsetof(struct virtio_pci, pci));
}

/* --- interrupts ------------------------------------------------------------ */

static void intx_update(struct virtio_pci *vp)
{
    bool disabled = le16_load(vp->pci.config + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
    bool level = vp->isr && !disabled && !msix_is_enabled(&vp->msix);
    if (level == vp->intx_level)
        return;
    vp->intx_level = level;
    if (level)
        vp->pci.config[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    else
        vp->pci.config[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    irq_line_set(&vp->intx, level);
}

static void vp_signal(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
    if (msix_is_enabled(&vp->msix)) {
        if (vector != MSIX_NO_VECTOR)
            msix_notify(&vp->msix, vector);
        return;
    }
    vp->isr |= isr_bit;
    intx_update(vp);
}

static void vp_notify_queue(struct virtio_dev *vdev, unsigned q)
{
    struct virtio_pci *vp = vdev->transport_ctx;
    vp_signal(vp, vp->queue_vector[q], ISR_QUEUE);
}

static void vp_notify_config(struct virtio_dev *vdev)
{
    struct virtio_pci *vp = vdev->transport_ctx;
    vp_signal(vp, vp->config_vector, ISR_CONFIG);
}

/* The queue's notification eventfd is the loop's to-do list for it: the
 * loop runs the queue again after the events already waiting. */
static void vp_kick(struct virtio_dev *vdev, unsigned q)
{
    struct virtio_pci *vp = vdev->transport_ctx;
    if (q < VIRTIO_MAX_QUEUES && vp->notify_fd[q] >= 0)
        eventfd_signal(vp->notify_fd[q]);
}

static const struct virtio_transport_ops vp_transport_ops = {
    .notify_queue = vp_notify_queue,
    .notify_config = vp_notify_config,
    .kick = vp_kick,
};

/* --- common configuration ---------------------------------------------------- */

static struct virtq *selected_queue(struct virtio_pci *vp)
{
    if (vp->queue_select >= vp->vdev->ops->num_queues)
        return NULL;
    return &vp->vdev->queues[vp->queue_select];
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off)
{
    struct virtio_dev *vdev = vp->vdev;
    struct virtq *q = selected_queue(vp);
    switch (off) {
    case CC_DEVICE_FEATURE_SELECT: return vp->device_feature_select;
    case CC_DEVICE_FEATURE:
        return vp->device_feature_select < 2
                   ? (uint32_t)(vdev->device_features >> (32 * vp->device_feature_select))
                   : 0;
    case CC_DRIVER_FEATURE_SELECT: return vp->driver_feature_select;
    case CC_DRIVER_FEATURE:
        return vp->driver_feature_select < 2
                   ? (uint32_t)(vdev->driver_features >> (32 * vp->driver_feature_select))
                   : 0;
    case CC_CONFIG_MSIX_VECTOR: return vp->config_vector;
    case CC_NUM_QUEUES: return vdev->ops->num_queues;
    case CC_DEVICE_STATUS: return vdev->status;
    case CC_CONFIG_GENERATION: return vdev->config_generation;
    case CC_QUEUE_SELECT: return vp->queue_select;
    case CC_QUEUE_SIZE: return q ? q->size : 0;
    case CC_QUEUE_MSIX_VECTOR: return q ? vp->queue_vector[vp->queue_select] : MSIX_NO_VECTOR;
    case CC_QUEUE_ENABLE: return q ? q->ready : 0;
    case CC_QUEUE_NOTIFY_OFF: return q ? vp->queue_select : 0;
    case CC_QUEUE_DESC: return q ? q->desc_gpa : 0;
    case CC_QUEUE_DESC + 4: return q ? q->desc_gpa >> 32 : 0;
    case CC_QUEUE_DRIVER: return q ? q->avail_gpa : 0;
    case CC_QUEUE_DRIVER + 4: return q ? q->avail_gpa >> 32 : 0;
    case CC_QUEUE_DEVICE: return q ? q->used_gpa : 0;
    case CC_QUEUE_DEVICE + 4: return q ? q->used_gpa >> 32 : 0;
    default: return 0;
    }
}

static uint16_t valid_vector(struct virtio_pci *vp, uint16_t vector)
{
    return vector < vp->msix.nr_vectors ? vector : MSIX_NO_VECTOR;
}

static void set_half(uint64_t *field, unsigned off, unsigned base, unsigned len, uint64_t v)
{
    if (len == 8)
        *field = v;
    else if (off == base)
        *field = (*field & ~0xffffffffull) | (uint32_t)v;
    else
        *field = (*field & 0xffffffffull) | (uint64_t)(uint32_t)v << 32;
}

static void transport_reset(struct virtio_pci *vp)
{
    vp->device_feature_select = vp->driver_feature_select = 0;
    vp->queue_select = 0;
    vp->config_vector = MSIX_NO_VECTOR;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        vp->queue_vector[i] = MSIX_NO_VECTOR;
    vp->isr = 0;
    intx_update(vp);
}

static void queue_enable(struct virtio_pci *vp, struct virtq *q, unsigned index)
{
    struct virtio_dev *vdev = vp->vdev;
    q->ready = true;
    /* Normally queues are enabled before DRIVER_OK and started then; one
     * enabled earlier is checked now (virtq_start again at DRIVER_OK), so a
     * placement the device will refuse leaves it broken already, as a
     * snapshot then records it (a restore refuses an unbroken queue there). */
    if (virtq_start(q, vdev->gm) && virtio_dev_live(vdev))
        virtio_dev_queue_broken(vdev, index);
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned len, uint64_t v)
{
    struct virtio_dev *vdev = vp->vdev;
    struct virtq *q = selected_queue(vp);
    bool queue_live = q && q->ready;
    switch (off) {
    case CC_DEVICE_FEATURE_SELECT: vp->device_feature_select = (uint32_t)v; break;
    case CC_DRIVER_FEATURE_SELECT: vp->driver_feature_select = (uint32_t)v; break;
    case CC_DRIVER_FEATURE:
        if (vp->driver_feature_select < 2 && !(vdev->status & VIRTIO_STATUS_FEATURES_OK)) {
            unsigned shift = 32 * vp->driver_feature_select;
            vdev->driver_features = (vdev->driver_features & ~(0xffffffffull << shift)) |
                                    ((uint64_t)(uint32_t)v << shift);
        }
        break;
    case CC_CONFIG_MSIX_VECTOR: vp->config_vector = valid_vector(vp, (uint16_t)v); break;
    case CC_DEVICE_STATUS:
        virtio_dev_set_status(vdev, (uint8_t)v);
        if ((uint8_t)v == 0)
            transport_reset(vp);
        break;
    case CC_QUEUE_SELECT: vp->queue_select = (uint16_t)v; break;
    case CC_QUEUE_SIZE:
        /* The driver may shrink a queue, to a power of two. */
        if (q && !queue_live && v && v <= vdev->ops->queue_max_size && !(v & (v - 1)))
            q->size = (uint16_t)v;
        break;
    case CC_QUEUE_MSIX_VECTOR:
        if (q)
            vp->queue_vector[vp->queue_select] = valid_vector(vp, (uint16_t)v);
        break;
    case CC_QUEUE_ENABLE:
        if (q && v == 1 && !queue_live)
            queue_enable(vp, q, vp->queue_select);
        break;
    case CC_QUEUE_DESC: case CC_QUEUE_DESC + 4:
        if (q && !queue_live)
            set_half(&q->desc_gpa, off, CC_QUEUE_DESC, len, v);
        break;
    case CC_QUEUE_DRIVER: case CC_QUEUE_DRIVER + 4:
        if (q && !queue_live)
            set_half(&q->avail_gpa, off, CC_QUEUE_DRIVER, len, v);
        break;
    case CC_QUEUE_DEVICE: case CC_QUEUE_DEVICE + 4:
        if (q && !queue_live)
            set_half(&q->used_gpa, off, CC_QUEUE_DEVICE, len, v);
        break;
    default:
        break; /* read-only fields */
    }
}

/* Width of each field: accesses must match it (or be 4 bytes into the
 * 64-bit queue addresses). */
static unsigned common_field_size(unsigned off)
{
    switch (off) {
    case CC_DEVICE_STATUS: case CC_CONFIG_GENERATION: return 1;
    case CC_CONFIG_MSIX_VECTOR: case CC_NUM_QUEUES: case CC_QUEUE_SELECT:
    case CC_QUEUE_SIZE: case CC_QUEUE_MSIX_VECTOR: case CC_QUEUE_ENABLE:
    case CC_QUEUE_NOTIFY_OFF: return 2;
    case CC_QUEUE_DESC: case CC_QUEUE_DRIVER: case CC_QUEUE_DEVICE: return 8;
    default: return off < BAR_COMMON_SIZE ? 4 : 0;
    }
}

static bool common_access_ok(unsigned off, unsigned len)
{
    unsigned size = common_field_size(off);
    return size == len || (size == 8 && len == 4) ||
           (len == 4 && off >= CC_QUEUE_DESC && (off - CC_QUEUE_DESC) % 8 == 4);
}

/* --- notifications -------------------------------------------------------------- */

static void vp_process_queue(struct virtio_pci *vp, unsigned q)
{
    struct virtio_dev *vdev = vp->vdev;
    pthread_mutex_lock(&vdev->lock);
    if (virtio_dev_queue_running(vdev, q))
        vdev->ops->queue_notify(vdev, q);
    pthread_mutex_unlock(&vdev->lock);
}

static void vp_on_ioeventfd(void *ctx, uint32_t events)
{
    struct virtio_pci_notifier *n = ctx;
    (void)events;
    eventfd_drain(n->vp->notify_fd[n->queue]);
    vp_process_queue(n->vp, n->queue);
}

/* --- BAR ---------------------------------------------------------------------- */

static void bar_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
    struct virtio_dev *vdev = vp->vdev;
    memset(data, 0, len);
    if (off < BAR_COMMON + BAR_COMMON_SIZE) {
        if (common_access_ok((unsigned)off, len))
            le_store_n(data, len, common_read(vp, (unsigned)off));
    } else if (off == BAR_ISR) {
        *(uint8_t *)data = vp->isr;
        vp->isr = 0; /* reading acknowledges */
        intx_update(vp);
    } else if (off >= BAR_DEVICE && off < BAR_DEVICE + BAR_DEVICE_SIZE) {
        uint64_t o = off - BAR_DEVICE;
        if (o + len <= vdev->ops->config_size && vdev->ops->config_read)
            vdev->ops->config_read(vdev, (uint32_t)o, data, len);
    } else if (off >= BAR_MSIX_TABLE && off < BAR_MSIX_PBA) {
        msix_table_read(&vp->msix, off - BAR_MSIX_TABLE, data, len);
    } else if (off >= BAR_MSIX_PBA && off < BAR_MSIX_PBA + 8) {
        msix_pba_read(&vp->msix, off - BAR_MSIX_PBA, data, len);
    }
}

/* Returns the queue to process (a notification), or -1. */
static int bar_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
    struct virtio_dev *vdev = vp->vdev;
    if (off < BAR_COMMON + BAR_COMMON_SIZE) {
        if (common_access_ok((unsigned)off, len))
            common_write(vp, (unsigned)off, len, le_load_n(data, len));
    } else if (off >= BAR_DEVICE && off < BAR_DEVICE + BAR_DEVICE_SIZE) {
        uint64_t o = off - BAR_DEVICE;
        if (o + len <= vdev->ops->config_size && vdev->ops->config_write)
            vdev->ops->config_write(vdev, (uint32_t)o, data, len);
    } else if (off >= BAR_NOTIFY && off < BAR_NOTIFY + NOTIFY_MULTIPLIER * VIRTIO_MAX_QUEUES) {
        return (int)((off - BAR_NOTIFY) / NOTIFY_MULTIPLIER);
    } else if (off >= BAR_MSIX_TABLE && off < BAR_MSIX_PBA) {
        msix_table_write(&vp->msix, off - BAR_MSIX_TABLE, data, len);
    }
    return -1;
}

static void bar_bus_read(void *dev, uint64_t off, void *data, unsigned len)
{
    struct virtio_pci *vp = dev;
    pthread_mutex_lock(&vp->vdev->lock);
    bar_read(vp, off, data, len);
    pthread_mutex_unlock(&vp->vdev->lock);
}

static void bar_bus_write(void *dev, uint64_t off, const void *data, unsigned len)
{
    struct virtio_pci *vp = dev;
    pthread_mutex_lock(&vp->vdev->lock);
    int q = bar_write(vp, off, data, len);
    pthread_mutex_unlock(&vp->vdev->lock);
    /* Without an ioeventfd the notification arrives here, on a vCPU. */
    if (q >= 0)
        vp_process_queue(vp, (unsigned)q);
}

const struct bus_ops virtio_pci_bar_ops = {
    .read = bar_bus_read,
    .write = bar_bus_write,
};

static void bind_notifications(struct virtio_pci *vp, bool bind)
{
    const struct pci_platform *p = vp->plat;
    for (unsigned q = 0; q < vp->vdev->ops->num_queues; q++) {
        if (vp->notify_bound[q] == bind || !p->ioeventfd)
            continue;
        uint64_t addr = vp->bar_addr + BAR_NOTIFY + (uint64_t)q * NOTIFY_MULTIPLIER;
        /* The driver writes the 16-bit queue index to its notify address. */
        if (p->ioeventfd(p->ioeventfd_ctx, vp->notify_fd[q], addr, 2, NULL, bind) == 0)
            vp->notify_bound[q] = bind;
        else
            log_warn("%s: queue %u notifications fall back to vCPU exits: %s", vp->name, q,
                     err_msg());
    }
}

/* Called with the PCI bus lock held, when decoding or the address changes. */
static void vp_bar_remap(struct pci_device *dev, unsigned bar, uint64_t addr, bool mapped)
{
    struct virtio_pci *vp = to_vp(dev);
    if (bar != 0)
        return;
    if (vp->bar_mapped) {
        bind_notifications(vp, false);
        bus_unregister(vp->plat->mmio, vp->bar_addr, vp);
        vp->bar_mapped = false;
    }
    if (!mapped)
        return;
    if (bus_register(vp->plat->mmio, addr, VIRTIO_PCI_BAR_SIZE, &virtio_pci_bar_ops, vp,
                     vp->name)) {
        log_guest("%s: BAR at %#llx not usable: %s", vp->name, (unsigned long long)addr,
                  err_msg());
        return;
    }
    vp->bar_addr = addr;
    vp->bar_mapped = true;
    bind_notifications(vp, true);
}

/* --- configuration space: MSI-X control and the BAR access window -------- */

#define CFG_CAP_BAR 4
#define CFG_CAP_OFFSET 8
#define CFG_CAP_LENGTH 12
#define CFG_CAP_DATA 16

static bool window_access(struct virtio_pci *vp, uint64_t *off, unsigned *len)
{
    const uint8_t *cap = vp->pci.config + vp->cfg_cap;
    *off = le32_load(cap + CFG_CAP_OFFSET);
    *len = le32_load(cap + CFG_CAP_LENGTH);
    return cap[CFG_CAP_BAR] == 0 && (*len == 1 || *len == 2 || *len == 4) &&
           *off + *len <= VIRTIO_PCI_BAR_SIZE && (*off & (*len - 1)) == 0;
}

static bool touches_window(const struct virtio_pci *vp, unsigned offset, unsigned len)
{
    unsigned start = vp->cfg_cap + CFG_CAP_DATA;
    return offset < start + 4 && offset + len > start;
}

static void vp_config_read(struct pci_device *dev, unsigned offset, unsigned len)
{
    struct virtio_pci *vp = to_vp(dev);
    uint64_t off;
    unsigned n;
    if (!touches_window(vp, offset, len) || !window_access(vp, &off, &n))
        return;
    pthread_mutex_lock(&vp->vdev->lock);
    bar_read(vp, off, dev->config + vp->cfg_cap + CFG_CAP_DATA, n);
    pthread_mutex_unlock(&vp->vdev->lock);
}

static void vp_config_written(struct pci_device *dev, unsigned offset, unsigned len)
{
    struct virtio_pci *vp = to_vp(dev);
    pthread_mutex_lock(&vp->vdev->lock);
    msix_config_written(&vp->msix);
    intx_update(vp);
    int q = -1;
    uint64_t off;
    unsigned n;
    if (touches_window(vp, offset, len) && window_access(vp, &off, &n))
        q = bar_write(vp, off, dev->config + vp->cfg_cap + CFG_CAP_DATA, n);
    pthread_mutex_unlock(&vp->vdev->lock);
    if (q >= 0)
        vp_process_queue(vp, (unsigned)q);
}

static const struct pci_device_ops vp_pci_ops = {
    .config_written = vp_config_written,
    .config_read = vp_config_read,
    .bar_remap = vp_bar_remap,
};

/* --- setup ------------------------------------------------------------------ */

static int add_virtio_cap(struct virtio_pci *vp, uint8_t type, uint32_t offset,
                          uint32_t length, size_t extra)
{
    uint8_t body[18] = {0};
    body[0] = (uint8_t)(16 + extra); /* cap_len, counted from the ID byte */
    body[1] = type;
    body[2] = 0;                     /* BAR */
    le32_store(body + 6, offset);
    le32_store(body + 10, length);
    if (type == CAP_NOTIFY)
        le32_store(body + 14, NOTIFY_MULTIPLIER);
    return pci_device_add_capability(&vp->pci, PCI_CAP_ID_VENDOR, body, 14 + extra);
}

static uint32_t pci_class_of(uint32_t device_id)
{
    switch (device_id) {
    case VIRTIO_ID_NET: return 0x020000;
    case VIRTIO_ID_BLOCK: return 0x010000;
    case VIRTIO_ID_CONSOLE: return 0x078000;
    default: return 0xff0000;
    }
}

static int setup_notifications(struct virtio_pci *vp)
{
    for (unsigned q = 0; q < vp->vdev->ops->num_queues; q++) {
        vp->notify_fd[q] = eventfd_create();
        if (vp->notify_fd[q] < 0)
            return vp->notify_fd[q];
        vp->notifiers[q] = (struct virtio_pci_notifier){vp, q};
        int ret = evloop_add(vp->plat->loop, vp->notify_fd[q], EPOLLIN, vp_on_ioeventfd,
                             &vp->notifiers[q]);
        if (ret)
            return ret;
    }
    return 0;
}

static int setup_caps(struct virtio_pci *vp)
{
    struct virtio_dev *vdev = vp->vdev;
    unsigned vectors = vdev->ops->num_queues + 1;
    int ret = msix_init(&vp->msix, &vp->pci, vectors, 0, BAR_MSIX_TABLE, BAR_MSIX_PBA,
                        vp->plat->msi, vp->plat->msi_ctx);
    if (ret)
        return ret;
    int caps[5] = {
        add_virtio_cap(vp, CAP_COMMON, BAR_COMMON, BAR_COMMON_SIZE, 0),
        add_virtio_cap(vp, CAP_NOTIFY, BAR_NOTIFY,
                       NOTIFY_MULTIPLIER * vdev->ops->num_queues, 4),
        add_virtio_cap(vp, CAP_ISR, BAR_ISR, 1, 0),
        add_virtio_cap(vp, CAP_DEVICE, BAR_DEVICE, MAX(vdev->ops->config_size, 1u), 0),
        add_virtio_cap(vp, CAP_PCI_CFG, 0, 0, 4),
    };
    for (int i = 0; i < 5; i++)
        if (caps[i] < 0)
            return caps[i];
    vp->cfg_cap = (uint8_t)caps[4];
    /* The driver chooses BAR, offset and length of the window, and its data. */
    uint8_t *w = vp->pci.wmask + vp->cfg_cap;
    w[CFG_CAP_BAR] = 0xff;
    memset(w + CFG_CAP_OFFSET, 0xff, 4);
    memset(w + CFG_CAP_LENGTH, 0xff, 4);
    memset(w + CFG_CAP_DATA, 0xff, 4);
    return 0;
}

int virtio_pci_init(struct virtio_pci *vp, struct virtio_dev *vdev, struct pci_bus *bus,
                    unsigned slot, uint64_t bar_addr, struct irq_line intx,
                    const struct pci_platform *plat)
{
    memset(vp, 0, sizeof(*vp));
    vp->vdev = vdev;
    vp->plat = plat;
    vp->intx = intx;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        vp->notify_fd[q] = -1;
    snprintf(vp->name, sizeof(vp->name), "virtio-%s@%02x", vdev->ops->name, slot);
    vdev->transport = &vp_transport_ops;
    vdev->transport_ctx = vp;
    transport_reset(vp);
    if (vdev->ops->num_queues > VIRTIO_MAX_QUEUES || slot >= PCI_MAX_SLOTS)
        return err_set(-EINVAL, "%s: bad configuration", vp->name);

    struct pci_device *dev = &vp->pci;
    pci_device_init(dev, vp->name, VIRTIO_PCI_VENDOR,
                    (uint16_t)(VIRTIO_PCI_DEVICE_BASE + vdev->ops->device_id),
                    pci_class_of(vdev->ops->device_id), 1);
    le16_store(dev->config + PCI_SUBSYSTEM_ID, 0x1100);
    dev->config[PCI_INTERRUPT_PIN] = 1; /* INTA# */
    dev->config[PCI_INTERRUPT_LINE] = (uint8_t)intx.gsi;
    dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
    dev->ops = &vp_pci_ops;
    dev->ctx = vp;
    int ret = pci_device_add_bar(dev, 0, PCI_BAR_MEM32, VIRTIO_PCI_BAR_SIZE, bar_addr);
    if (!ret)
        ret = setup_caps(vp);
    if (!ret)
        ret = pci_bus_add(bus, dev, slot);
    if (!ret)
        ret = setup_notifications(vp);
    if (ret)
        return err_prefix(ret, "%s", vp->name);
    /* As firmware would leave it: decoding on, so the BAR is live at boot. */
    dev->config[PCI_COMMAND] |= PCI_COMMAND_MEMORY;
    pci_device_update_bars(dev);
    return 0;
}

void virtio_pci_set_paused(struct virtio_pci *vp, bool paused)
{
    struct virtio_dev *vdev = vp->vdev;
    pthread_mutex_lock(&vdev->lock);
    vdev->paused = paused;
    /* Notifications that arrive meanwhile stay counted in their eventfds
     * and are handled once they are watched again. */
    for (unsigned q = 0; q < vdev->ops->num_queues; q++)
        if (vp->notify_fd[q] >= 0)
            evloop_modify(vp->plat->loop, vp->notify_fd[q], paused ? 0 : EPOLLIN);
    if (vdev->ops->pause)
        vdev->ops->pause(vdev, paused);
    pthread_mutex_unlock(&vdev->lock);
    /* A notification taken off its eventfd in the same loop round as the
     * pause was dropped; look at every queue once. */
    for (unsigned q = 0; !paused && q < vdev->ops->num_queues; q++)
        vp_process_queue(vp, q);
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
    if (vp->bar_mapped)
        bind_notifications(vp, false);
    msix_destroy(&vp->msix);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        if (vp->notify_fd[q] >= 0) {
            evloop_remove(vp->plat->loop, vp->notify_fd[q]);
            close(vp->notify_fd[q]);
        }
    }
}

void virtio_pci_dump(struct virtio_pci *vp)
{
    struct virtio_dev *vdev = vp->vdev;
    pthread_mutex_lock(&vdev->lock);
    log_warn("%s: status %#x%s, MSI-X %s%s, pending %#llx, ISR %#x, INTx %s", vp->name,
             vdev->status, vdev->paused ? " (paused)" : "",
             vp->msix.enabled ? "on" : "off", vp->msix.function_masked ? " (masked)" : "",
             (unsigned long long)vp->msix.pending, vp->isr, vp->intx_level ? "high" : "low");
    for (unsigned q = 0; q < vdev->ops->num_queues; q++) {
        char line[256];
        virtq_describe(&vdev->queues[q], line, sizeof(line));
        log_warn("%s: queue %u (vector %u): %s", vp->name, q, vp->queue_vector[q], line);
    }
    pthread_mutex_unlock(&vdev->lock);
}

void virtio_pci_save(struct virtio_pci *vp, struct rec r)
{
    struct virtio_dev *vdev = vp->vdev;
    pthread_mutex_lock(&vdev->lock);
    rec_put_u64(r, "slot", vp->pci.slot);
    rec_put_str(r, "device", vdev->ops->name);
    pci_device_save(&vp->pci, rec_put_child(r, "pci"));
    msix_save(&vp->msix, rec_put_child(r, "msix"));
    rec_put_u64(r, "device_feature_select", vp->device_feature_select);
    rec_put_u64(r, "driver_feature_select", vp->driver_feature_select);
    rec_put_u64(r, "queue_select", vp->queue_select);
    rec_put_u64(r, "config_vector", vp->config_vector);
    rec_put_u64(r, "isr", vp->isr);
    rec_put_u64(r, "device_features", vdev->device_features);
    rec_put_u64(r, "driver_features", vdev->driver_features);
    rec_put_u64(r, "status", vdev->status);
    rec_put_u64(r, "config_generation", vdev->config_generation);
    for (unsigned q = 0; q < vdev->ops->num_queues; q++) {
        struct rec item = rec_put_item(r, "queues");
        virtq_save(&vdev->queues[q], item);
        rec_put_u64(item, "vector", vp->queue_vector[q]);
    }
    if (vdev->ops->save)
        vdev->ops->save(vdev, rec_put_child(r, "model"));
    pthread_mutex_unlock(&vdev->lock);
}

static int load_vector(struct virtio_pci *vp, struct rec r, const char *key, uint16_t *out)
{
    int ret = rec_get_u16(r, key, UINT16_MAX, out);
    if (!ret && *out != MSIX_NO_VECTOR && *out >= vp->msix.nr_vectors)
        ret = err_set(-EINVAL, "'%s' %u: the device has %u vectors", key, *out,
                      vp->msix.nr_vectors);
    return ret;
}

static int load_transport(struct virtio_pci *vp, struct rec r)
{
    struct virtio_dev *vdev = vp->vdev;
    uint64_t features;
    uint32_t slot;
    char name[32];
    int ret = rec_get_u32(r, "slot", PCI_MAX_SLOTS - 1, &slot);
    if (!ret && slot != vp->pci.slot)
        ret = err_set(-EINVAL, "the snapshot has this device in slot %u", slot);
    if (!ret)
        ret = rec_get_str(r, "device", name, sizeof(name));
    if (!ret && strcmp(name, vdev->ops->name))
        ret = err_set(-EINVAL, "the snapshot has virtio-%s here", name);
    if (!ret)
        ret = rec_get_u64(r, "device_features", UINT64_MAX, &features);
    if (!ret && features != vdev->device_features)
        ret = err_set(-EINVAL, "the device offered features %#llx, it now offers %#llx "
                               "(a disk or network backend with other capabilities?)",
                      (unsigned long long)features, (unsigned long long)vdev->device_features);
    /* Before FEATURES_OK the driver may have written any bits (the device
     * then refuses FEATURES_OK); after it, only the device's. */
    if (!ret)
        ret = rec_get_u64(r, "driver_features", UINT64_MAX, &vdev->driver_features);
    if (!ret)
        ret = rec_get_u8(r, "status", &vdev->status);
    if (!ret && (vdev->status & VIRTIO_STATUS_FEATURES_OK) &&
        (vdev->driver_features & ~vdev->device_features))
        ret = err_set(-EINVAL, "driver features beyond the device's, accepted (FEATURES_OK)");
    if (!ret)
        ret = rec_get_u8(r, "config_generation", &vdev->config_generation);
    if (!ret)
        ret = rec_get_u32(r, "device_feature_select", UINT32_MAX, &vp->device_feature_select);
    if (!ret)
        ret = rec_get_u32(r, "driver_feature_select", UINT32_MAX, &vp->driver_feature_select);
    if (!ret)
        ret = rec_get_u16(r, "queue_select", UINT16_MAX, &vp->queue_select);
    if (!ret)
        ret = load_vector(vp, r, "config_vector", &vp->config_vector);
    if (!ret)
        ret = rec_get_u8(r, "isr", &vp->isr);
    size_t nq;
    if (!ret && !(ret = rec_get_count(r, "queues", VIRTIO_MAX_QUEUES, &nq)) &&
        nq != vdev->ops->num_queues)
        ret = err_set(-EINVAL, "%zu queues, the device has %u", nq, vdev->ops->num_queues);
    for (unsigned q = 0; !ret && q < vdev->ops->num_queues; q++) {
        struct rec item;
        ret = rec_get_item(r, "queues", q, &item);
        if (!ret)
            ret = virtq_load(&vdev->queues[q], vdev->gm, vdev->ops->queue_max_size, item);
        if (!ret)
            ret = load_vector(vp, item, "vector", &vp->queue_vector[q]);
        if (ret)
            err_prefix(ret, "queue %u", q);
    }
    struct rec model;
    if (!ret && vdev->ops->load && !(ret = rec_get_child(r, "model", &model)))
        ret = vdev->ops->load(vdev, model);
    return ret;
}

int virtio_pci_load(struct virtio_pci *vp, struct rec r)
{
    struct virtio_dev *vdev = vp->vdev;
    struct rec pci, msix;
    int ret = rec_get_child(r, "pci", &pci);
    if (!ret)
        ret = rec_get_child(r, "msix", &msix);
    if (!ret) {
        pthread_mutex_lock(&vdev->lock);
        ret = load_transport(vp, r);
        pthread_mutex_unlock(&vdev->lock);
    }
    if (!ret)
        ret = pci_device_load(&vp->pci, pci);
    if (!ret)
        ret = msix_load(&vp->msix, msix);
    if (ret)
        return err_prefix(ret, "%s", vp->name);
    pthread_mutex_lock(&vdev->lock);
    vp->intx_level = false;
    intx_update(vp); /* an interrupt the driver had not yet taken is raised again */
    bool live = virtio_dev_live(vdev);
    if (live && vdev->ops->activate && vdev->ops->activate(vdev)) {
        log_warn("%s: cannot restart after restore: %s", vp->name, err_msg());
        vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
        live = false;
    }
    /* A completion's interrupt may still have been on its way into the
     * interrupt controller when the state was saved: signal every queue
     * once (the driver finds nothing new if it had it). */
    for (unsigned q = 0; live && q < vdev->ops->num_queues; q++)
        if (vdev->queues[q].ready)
            vp_signal(vp, vp->queue_vector[q], ISR_QUEUE);
    pthread_mutex_unlock(&vdev->lock);
    /* Buffers the driver made available and notified before the snapshot
     * will not be notified again. */
    for (unsigned q = 0; live && q < vdev->ops->num_queues; q++)
        vp_process_queue(vp, q);
    return 0;
}

/* --- on the board ---------------------------------------------------------- */

static void vp_device_destroy(void *dev)
{
    struct virtio_pci *vp = dev;
    virtio_pci_destroy(vp);
    vp->vdev->ops->destroy(vp->vdev);
    free(vp);
}

static void vp_device_save(void *dev, struct rec r)
{
    virtio_pci_save(dev, r);
}

static int vp_device_load(void *dev, struct rec r)
{
    return virtio_pci_load(dev, r);
}

static void vp_device_pause(void *dev, bool paused)
{
    virtio_pci_set_paused(dev, paused);
}

static size_t vp_device_counters(void *dev, struct device_counter *out)
{
    return virtio_dev_counters(((struct virtio_pci *)dev)->vdev, out);
}

static void vp_device_dump(void *dev)
{
    virtio_pci_dump(dev);
}

static const struct device_ops vp_device_ops = {
    .destroy = vp_device_destroy,
    .save = vp_device_save,
    .load = vp_device_load,
    .pause = vp_device_pause,
    .counters = vp_device_counters,
    .dump = vp_device_dump,
};

int virtio_pci_board_add(struct board *b, struct virtio_dev *vdev, const char *metrics)
{
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    if (!vp) {
        vdev->ops->destroy(vdev);
        return err_set(-ENOMEM, "out of memory");
    }
    vp->vdev = vdev;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        vp->notify_fd[q] = -1;
    vp->plat = b->pci_platform; /* what destroy needs, should init fail early */
    struct device *d = board_add(b, &vp_device_ops, vp, "virtio");
    if (!d)
        return -ENOSPC;
    d->group = "virtio";
    d->kind = vdev->ops;
    d->model = vdev->model;
    snprintf(d->metrics, sizeof(d->metrics), "%s", metrics);
    int slot = pci_bus_free_slot(b->pci);
    if (slot < 0)
        return err_set(-ENOSPC, "no free PCI slot for virtio-%s", vdev->ops->name);
    return virtio_pci_init(vp, vdev, b->pci, (unsigned)slot, PCI_SLOT_BAR_BASE((unsigned)slot),
                           board_irq(b, PCI_INTX_GSI((unsigned)slot, 0)), b->pci_platform);
}
