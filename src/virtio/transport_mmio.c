#include "virtio/transport_mmio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "arch/x86_64/layout.h"
#include "util/log.h"
#include "util/util.h"

/* --- interrupts ------------------------------------------------------------ */

/* Each event is an edge on the device's pin; the driver reads what
 * happened in InterruptStatus and acknowledges it. */
static void vm_interrupt(struct virtio_mmio *vm, uint32_t why)
{
    vm->interrupt_status |= why;
    vm->interrupts++;
    if (vm->irq_fd >= 0)
        eventfd_signal(vm->irq_fd);
    else
        irq_line_pulse(&vm->irq);
}

static void vm_notify_queue(struct virtio_dev *vdev, unsigned q)
{
    (void)q;
    vm_interrupt(vdev->transport_ctx, VMMIO_INT_VRING);
}

static void vm_notify_config(struct virtio_dev *vdev)
{
    vm_interrupt(vdev->transport_ctx, VMMIO_INT_CONFIG);
}

/* As on PCI: the queue's notification eventfd is the loop's to-do list for
 * it, so a device over its budget continues after the loop's other events. */
static void vm_kick(struct virtio_dev *vdev, unsigned q)
{
    struct virtio_mmio *vm = vdev->transport_ctx;
    if (q < VIRTIO_MAX_QUEUES && vm->notify_fd[q] >= 0)
        eventfd_signal(vm->notify_fd[q]);
}

static const struct virtio_transport_ops vm_transport_ops = {
    .notify_queue = vm_notify_queue,
    .notify_config = vm_notify_config,
    .kick = vm_kick,
};

/* --- registers -------------------------------------------------------------- */

static struct virtq *selected_queue(struct virtio_mmio *vm)
{
    if (vm->queue_select >= vm->vdev->ops->num_queues)
        return NULL;
    return &vm->vdev->queues[vm->queue_select];
}

static uint32_t reg_read(struct virtio_mmio *vm, unsigned off)
{
    struct virtio_dev *vdev = vm->vdev;
    struct virtq *q = selected_queue(vm);
    switch (off) {
    case VMMIO_MAGIC: return VIRTIO_MMIO_MAGIC;
    case VMMIO_VERSION: return VIRTIO_MMIO_VERSION;
    case VMMIO_DEVICE_ID: return vdev->ops->device_id;
    case VMMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
    case VMMIO_DEVICE_FEATURES:
        return vm->device_feature_select < 2
                   ? (uint32_t)(vdev->device_features >> (32 * vm->device_feature_select))
                   : 0;
    case VMMIO_QUEUE_NUM_MAX: return q ? vdev->ops->queue_max_size : 0;
    case VMMIO_QUEUE_READY: return q ? q->ready : 0;
    case VMMIO_INTERRUPT_STATUS: return vm->interrupt_status;
    case VMMIO_STATUS: return vdev->status;
    case VMMIO_CONFIG_GENERATION: return vdev->config_generation;
    /* No shared memory regions: a length of all ones says so. */
    case VMMIO_SHM_LEN_LOW: case VMMIO_SHM_LEN_HIGH:
    case VMMIO_SHM_BASE_LOW: case VMMIO_SHM_BASE_HIGH: return 0xffffffffu;
    default: return 0; /* write-only or reserved */
    }
}

static void set_half(uint64_t *field, bool high, uint32_t v)
{
    if (high)
        *field = (*field & 0xffffffffull) | (uint64_t)v << 32;
    else
        *field = (*field & ~0xffffffffull) | v;
}

static void transport_reset(struct virtio_mmio *vm)
{
    vm->device_feature_select = vm->driver_feature_select = 0;
    vm->queue_select = 0;
    vm->interrupt_status = 0;
}

static void queue_set_ready(struct virtio_mmio *vm, struct virtq *q, unsigned index, bool ready)
{
    struct virtio_dev *vdev = vm->vdev;
    if (ready && !q->ready) {
        q->ready = true;
        /* Normally queues are made ready before DRIVER_OK, and start then;
         * checked now too, as on PCI (queue_enable). */
        if (virtq_start(q, vdev->gm) && virtio_dev_live(vdev))
            virtio_dev_queue_broken(vdev, index);
    } else if (!ready && q->ready) {
        /* The driver takes the queue back (Linux does, before deleting it). */
        virtq_reset(q);
        q->size = vdev->ops->queue_max_size;
    }
}

/* Returns the queue to process (a notification), or -1. */
static int reg_write(struct virtio_mmio *vm, unsigned off, uint32_t v)
{
    struct virtio_dev *vdev = vm->vdev;
    struct virtq *q = selected_queue(vm);
    bool queue_live = q && q->ready;
    switch (off) {
    case VMMIO_DEVICE_FEATURES_SEL: vm->device_feature_select = v; break;
    case VMMIO_DRIVER_FEATURES_SEL: vm->driver_feature_select = v; break;
    case VMMIO_DRIVER_FEATURES:
        if (vm->driver_feature_select < 2 && !(vdev->status & VIRTIO_STATUS_FEATURES_OK)) {
            unsigned shift = 32 * vm->driver_feature_select;
            vdev->driver_features = (vdev->driver_features & ~(0xffffffffull << shift)) |
                                    ((uint64_t)v << shift);
        }
        break;
    case VMMIO_QUEUE_SEL: vm->queue_select = v; break;
    case VMMIO_QUEUE_NUM:
        /* A split ring's size is a power of two, at most the device's. */
        if (q && !queue_live && v && v <= vdev->ops->queue_max_size && !(v & (v - 1)))
            q->size = (uint16_t)v;
        break;
    case VMMIO_QUEUE_READY:
        if (q && (v == 0 || v == 1))
            queue_set_ready(vm, q, vm->queue_select, v == 1);
        break;
    case VMMIO_QUEUE_NOTIFY:
        return v < vdev->ops->num_queues ? (int)v : -1;
    case VMMIO_INTERRUPT_ACK: vm->interrupt_status &= ~v; break;
    case VMMIO_STATUS:
        virtio_dev_set_status(vdev, (uint8_t)v);
        if ((uint8_t)v == 0)
            transport_reset(vm);
        break;
    case VMMIO_QUEUE_DESC_LOW: case VMMIO_QUEUE_DESC_HIGH:
        if (q && !queue_live)
            set_half(&q->desc_gpa, off == VMMIO_QUEUE_DESC_HIGH, v);
        break;
    case VMMIO_QUEUE_DRIVER_LOW: case VMMIO_QUEUE_DRIVER_HIGH:
        if (q && !queue_live)
            set_half(&q->avail_gpa, off == VMMIO_QUEUE_DRIVER_HIGH, v);
        break;
    case VMMIO_QUEUE_DEVICE_LOW: case VMMIO_QUEUE_DEVICE_HIGH:
        if (q && !queue_live)
            set_half(&q->used_gpa, off == VMMIO_QUEUE_DEVICE_HIGH, v);
        break;
    default:
        break; /* read-only or reserved: ignored */
    }
    return -1;
}

static void window_read(struct virtio_mmio *vm, uint64_t off, void *data, unsigned len)
{
    struct virtio_dev *vdev = vm->vdev;
    memset(data, 0, len);
    if (off >= VMMIO_CONFIG) {
        uint64_t o = off - VMMIO_CONFIG;
        if (o + len <= vdev->ops->config_size && vdev->ops->config_read)
            vdev->ops->config_read(vdev, (uint32_t)o, data, len);
    } else if (len == 4 && !(off & 3)) {
        le32_store(data, reg_read(vm, (unsigned)off));
    }
}

static int window_write(struct virtio_mmio *vm, uint64_t off, const void *data, unsigned len)
{
    struct virtio_dev *vdev = vm->vdev;
    if (off >= VMMIO_CONFIG) {
        uint64_t o = off - VMMIO_CONFIG;
        if (o + len <= vdev->ops->config_size && vdev->ops->config_write)
            vdev->ops->config_write(vdev, (uint32_t)o, data, len);
        return -1;
    }
    if (len != 4 || (off & 3))
        return -1; /* registers take aligned 32-bit accesses only */
    return reg_write(vm, (unsigned)off, le32_load(data));
}

/* --- notifications -------------------------------------------------------------- */

static void vm_process_queue(struct virtio_mmio *vm, unsigned q)
{
    struct virtio_dev *vdev = vm->vdev;
    pthread_mutex_lock(&vdev->lock);
    if (virtio_dev_queue_running(vdev, q))
        vdev->ops->queue_notify(vdev, q);
    pthread_mutex_unlock(&vdev->lock);
}

static void vm_on_ioeventfd(void *ctx, uint32_t events)
{
    struct virtio_mmio_notifier *n = ctx;
    (void)events;
    eventfd_drain(n->vm->notify_fd[n->queue]);
    vm_process_queue(n->vm, n->queue);
}

static void bus_read_op(void *dev, uint64_t off, void *data, unsigned len)
{
    struct virtio_mmio *vm = dev;
    pthread_mutex_lock(&vm->vdev->lock);
    window_read(vm, off, data, len);
    pthread_mutex_unlock(&vm->vdev->lock);
}

static void bus_write_op(void *dev, uint64_t off, const void *data, unsigned len)
{
    struct virtio_mmio *vm = dev;
    pthread_mutex_lock(&vm->vdev->lock);
    int q = window_write(vm, off, data, len);
    pthread_mutex_unlock(&vm->vdev->lock);
    /* Without an ioeventfd the notification arrives here, on a vCPU. */
    if (q >= 0)
        vm_process_queue(vm, (unsigned)q);
}

const struct bus_ops virtio_mmio_bus_ops = {
    .read = bus_read_op,
    .write = bus_write_op,
};

/* One eventfd per queue on the same register, told apart by the value the
 * driver writes: its queue's index. */
static void bind_notifications(struct virtio_mmio *vm, bool bind)
{
    const struct pci_platform *p = vm->plat;
    for (unsigned q = 0; p && p->ioeventfd && q < vm->vdev->ops->num_queues; q++) {
        if (vm->notify_bound[q] == bind)
            continue;
        uint64_t match = q;
        if (p->ioeventfd(p->ioeventfd_ctx, vm->notify_fd[q], vm->base + VMMIO_QUEUE_NOTIFY, 4,
                         &match, bind) == 0)
            vm->notify_bound[q] = bind;
        else
            log_warn("%s: queue %u notifications fall back to vCPU exits: %s", vm->name, q,
                     err_msg());
    }
}

static int setup_notifications(struct virtio_mmio *vm)
{
    for (unsigned q = 0; q < vm->vdev->ops->num_queues; q++) {
        vm->notify_fd[q] = eventfd_create();
        if (vm->notify_fd[q] < 0)
            return vm->notify_fd[q];
        vm->notifiers[q] = (struct virtio_mmio_notifier){vm, q};
        int ret = evloop_add(vm->plat->loop, vm->notify_fd[q], EPOLLIN, vm_on_ioeventfd,
                             &vm->notifiers[q]);
        if (ret)
            return ret;
    }
    bind_notifications(vm, true);
    return 0;
}

/* --- life ------------------------------------------------------------------------ */

int virtio_mmio_init(struct virtio_mmio *vm, struct virtio_dev *vdev, struct bus *bus,
                     uint64_t base, struct irq_line irq, const struct pci_platform *plat)
{
    memset(vm, 0, sizeof(*vm));
    vm->vdev = vdev;
    vm->plat = plat;
    vm->bus = bus;
    vm->base = base;
    vm->irq = irq;
    vm->gsi = irq.gsi;
    vm->irq_fd = -1;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        vm->notify_fd[q] = -1;
    snprintf(vm->name, sizeof(vm->name), "virtio-%s@%#llx", vdev->ops->name,
             (unsigned long long)base);
    vdev->transport = &vm_transport_ops;
    vdev->transport_ctx = vm;
    if (vdev->ops->num_queues > VIRTIO_MAX_QUEUES ||
        vdev->ops->config_size > VIRTIO_MMIO_SIZE - VMMIO_CONFIG)
        return err_set(-EINVAL, "%s: bad configuration", vm->name);
    int ret = 0;
    if (plat && plat->irqfd) {
        ret = plat->irqfd(plat->irqfd_ctx, vm->gsi, &vm->irq_fd);
        if (ret == -ENOTSUP)
            ret = 0; /* the device pulses its line itself */
    }
    if (!ret)
        ret = bus_register(bus, base, VIRTIO_MMIO_SIZE, &virtio_mmio_bus_ops, vm, vm->name);
    if (!ret) {
        vm->mapped = true;
        ret = plat ? setup_notifications(vm) : 0;
    }
    return ret ? err_prefix(ret, "%s", vm->name) : 0;
}

void virtio_mmio_destroy(struct virtio_mmio *vm)
{
    if (vm->mapped) {
        bind_notifications(vm, false);
        bus_unregister(vm->bus, vm->base, vm);
        vm->mapped = false;
    }
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        if (vm->notify_fd[q] >= 0) {
            evloop_remove(vm->plat->loop, vm->notify_fd[q]);
            close(vm->notify_fd[q]);
            vm->notify_fd[q] = -1;
        }
    }
    if (vm->irq_fd >= 0 && vm->plat && vm->plat->irqfd_release)
        vm->plat->irqfd_release(vm->plat->irqfd_ctx, vm->gsi, vm->irq_fd);
    vm->irq_fd = -1;
}

void virtio_mmio_set_paused(struct virtio_mmio *vm, bool paused)
{
    struct virtio_dev *vdev = vm->vdev;
    pthread_mutex_lock(&vdev->lock);
    vdev->paused = paused;
    for (unsigned q = 0; q < vdev->ops->num_queues; q++)
        if (vm->notify_fd[q] >= 0)
            evloop_modify(vm->plat->loop, vm->notify_fd[q], paused ? 0 : EPOLLIN);
    if (vdev->ops->pause)
        vdev->ops->pause(vdev, paused);
    pthread_mutex_unlock(&vdev->lock);
    /* A notification taken off its eventfd as the pause began was dropped. */
    for (unsigned q = 0; !paused && q < vdev->ops->num_queues; q++)
        vm_process_queue(vm, q);
}

void virtio_mmio_dump(struct virtio_mmio *vm)
{
    struct virtio_dev *vdev = vm->vdev;
    pthread_mutex_lock(&vdev->lock);
    log_warn("%s: status %#x%s, GSI %u (%s), interrupt status %#x, %llu interrupts", vm->name,
             vdev->status, vdev->paused ? " (paused)" : "", vm->gsi,
             vm->irq_fd >= 0 ? "irqfd" : "line", vm->interrupt_status,
             (unsigned long long)vm->interrupts);
    for (unsigned q = 0; q < vdev->ops->num_queues; q++) {
        char line[256];
        virtq_describe(&vdev->queues[q], line, sizeof(line));
        log_warn("%s: queue %u: %s", vm->name, q, line);
    }
    pthread_mutex_unlock(&vdev->lock);
}

/* --- snapshots ---------------------------------------------------------------- */

void virtio_mmio_save(struct virtio_mmio *vm, struct rec r)
{
    struct virtio_dev *vdev = vm->vdev;
    pthread_mutex_lock(&vdev->lock);
    rec_put_str(r, "transport", "mmio");
    rec_put_u64(r, "base", vm->base);
    rec_put_u64(r, "gsi", vm->gsi);
    rec_put_str(r, "device", vdev->ops->name);
    rec_put_u64(r, "device_feature_select", vm->device_feature_select);
    rec_put_u64(r, "driver_feature_select", vm->driver_feature_select);
    rec_put_u64(r, "queue_select", vm->queue_select);
    rec_put_u64(r, "interrupt_status", vm->interrupt_status);
    rec_put_u64(r, "device_features", vdev->device_features);
    rec_put_u64(r, "driver_features", vdev->driver_features);
    rec_put_u64(r, "status", vdev->status);
    rec_put_u64(r, "config_generation", vdev->config_generation);
    for (unsigned q = 0; q < vdev->ops->num_queues; q++)
        virtq_save(&vdev->queues[q], rec_put_item(r, "queues"));
    if (vdev->ops->save)
        vdev->ops->save(vdev, rec_put_child(r, "model"));
    pthread_mutex_unlock(&vdev->lock);
}

static int load_identity(struct virtio_mmio *vm, struct rec r)
{
    char transport[8], name[32];
    uint64_t base;
    uint32_t gsi;
    int ret = rec_get_str(r, "transport", transport, sizeof(transport));
    if (!ret && strcmp(transport, "mmio"))
        ret = err_set(-EINVAL, "the snapshot has a %s device here", transport);
    if (!ret)
        ret = rec_get_u64(r, "base", UINT64_MAX, &base);
    if (!ret && base != vm->base)
        ret = err_set(-EINVAL, "the snapshot has this device at %#llx",
                      (unsigned long long)base);
    if (!ret)
        ret = rec_get_u32(r, "gsi", UINT32_MAX, &gsi);
    if (!ret && gsi != vm->gsi)
        ret = err_set(-EINVAL, "the snapshot has this device on GSI %u", gsi);
    if (!ret)
        ret = rec_get_str(r, "device", name, sizeof(name));
    if (!ret && strcmp(name, vm->vdev->ops->name))
        ret = err_set(-EINVAL, "the snapshot has virtio-%s here", name);
    return ret;
}

static int load_transport(struct virtio_mmio *vm, struct rec r)
{
    struct virtio_dev *vdev = vm->vdev;
    uint64_t features;
    int ret = load_identity(vm, r);
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
        ret = rec_get_u32(r, "device_feature_select", UINT32_MAX, &vm->device_feature_select);
    if (!ret)
        ret = rec_get_u32(r, "driver_feature_select", UINT32_MAX, &vm->driver_feature_select);
    if (!ret)
        ret = rec_get_u32(r, "queue_select", UINT32_MAX, &vm->queue_select);
    if (!ret)
        ret = rec_get_u32(r, "interrupt_status", VMMIO_INT_VRING | VMMIO_INT_CONFIG,
                          &vm->interrupt_status);
    size_t nq;
    if (!ret && !(ret = rec_get_count(r, "queues", VIRTIO_MAX_QUEUES, &nq)) &&
        nq != vdev->ops->num_queues)
        ret = err_set(-EINVAL, "%zu queues, the device has %u", nq, vdev->ops->num_queues);
    for (unsigned q = 0; !ret && q < vdev->ops->num_queues; q++) {
        struct rec item;
        ret = rec_get_item(r, "queues", q, &item);
        if (!ret)
            ret = virtq_load(&vdev->queues[q], vdev->gm, vdev->ops->queue_max_size, item);
        if (ret)
            err_prefix(ret, "queue %u", q);
    }
    struct rec model;
    if (!ret && vdev->ops->load && !(ret = rec_get_child(r, "model", &model)))
        ret = vdev->ops->load(vdev, model);
    return ret;
}

int virtio_mmio_load(struct virtio_mmio *vm, struct rec r)
{
    struct virtio_dev *vdev = vm->vdev;
    pthread_mutex_lock(&vdev->lock);
    int ret = load_transport(vm, r);
    if (ret) {
        pthread_mutex_unlock(&vdev->lock);
        return err_prefix(ret, "%s", vm->name);
    }
    bool live = virtio_dev_live(vdev);
    if (live && vdev->ops->activate && vdev->ops->activate(vdev)) {
        log_warn("%s: cannot restart after restore: %s", vm->name, err_msg());
        vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
        live = false;
    }
    /* An edge may have been on its way to the interrupt controller when the
     * state was saved: send one more if the driver has something to read
     * (finding nothing new is harmless). */
    if (vm->interrupt_status || live)
        vm_interrupt(vm, live ? VMMIO_INT_VRING : 0);
    pthread_mutex_unlock(&vdev->lock);
    /* Buffers made available and notified before the snapshot. */
    for (unsigned q = 0; live && q < vdev->ops->num_queues; q++)
        vm_process_queue(vm, q);
    return 0;
}

/* --- on the board ---------------------------------------------------------- */

int virtio_mmio_gsi(unsigned n)
{
    /* ISA lines no board device uses (1, 4, 8, 9 and 12 are taken), then
     * the pins PCI INTx would use (not with this transport). */
    static const uint8_t pins[] = {5, 6, 7, 10, 11, 3, 13, 14, 15,
                                   16, 17, 18, 19, 20, 21, 22, 23};
    return n < ARRAY_SIZE(pins) ? pins[n] : -1;
}

static void vm_device_destroy(void *dev)
{
    struct virtio_mmio *vm = dev;
    virtio_mmio_destroy(vm);
    if (vm->vdev)
        vm->vdev->ops->destroy(vm->vdev);
    free(vm);
}

static void vm_device_save(void *dev, struct rec r)
{
    virtio_mmio_save(dev, r);
}

static int vm_device_load(void *dev, struct rec r)
{
    return virtio_mmio_load(dev, r);
}

static void vm_device_pause(void *dev, bool paused)
{
    virtio_mmio_set_paused(dev, paused);
}

static size_t vm_device_counters(void *dev, struct device_counter *out)
{
    return virtio_dev_counters(((struct virtio_mmio *)dev)->vdev, out);
}

static void vm_device_dump(void *dev)
{
    virtio_mmio_dump(dev);
}

static const struct device_ops vm_device_ops = {
    .destroy = vm_device_destroy,
    .save = vm_device_save,
    .load = vm_device_load,
    .pause = vm_device_pause,
    .counters = vm_device_counters,
    .dump = vm_device_dump,
};

int virtio_mmio_board_add(struct board *b, struct virtio_dev *vdev, const char *metrics)
{
    struct virtio_mmio *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        vdev->ops->destroy(vdev);
        return err_set(-ENOMEM, "out of memory");
    }
    vm->vdev = vdev;
    vm->irq_fd = -1;
    vm->plat = b->pci_platform;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        vm->notify_fd[q] = -1;
    struct device *d = board_add(b, &vm_device_ops, vm, "virtio");
    if (!d)
        return -ENOSPC;
    d->group = "virtio";
    d->kind = vdev->ops;
    d->model = vdev->model;
    snprintf(d->metrics, sizeof(d->metrics), "%s", metrics);
    unsigned n = b->nr_mmio;
    int gsi = virtio_mmio_gsi(n);
    uint64_t base = LAYOUT_VIRTIO_MMIO + (uint64_t)n * LAYOUT_VIRTIO_MMIO_SIZE;
    if (gsi < 0 || base + VIRTIO_MMIO_SIZE > LAYOUT_VIRTIO_MMIO_END)
        return err_set(-ENOSPC, "no room for virtio-%s: at most %u virtio-mmio devices (one "
                                "interrupt line each)", vdev->ops->name, n);
    b->nr_mmio++;
    int ret = virtio_mmio_init(vm, vdev, b->mmio, base, board_irq(b, (uint32_t)gsi),
                               b->pci_platform);
    /* Firecracker's two announcements: the command line (for kernels with
     * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES) and the DSDT (for ACPI kernels). */
    if (!ret)
        ret = board_cmdline_append(b, "virtio_mmio.device=4K@%#llx:%d",
                                   (unsigned long long)base, gsi);
    if (!ret) {
        struct acpi_device acpi = {.hid = "LNRO0005", .hid_is_string = true, .uid = (int)n,
                                   .mem = {{(uint32_t)base, VIRTIO_MMIO_SIZE}}, .nr_mem = 1,
                                   .irq = gsi, .irq_gsi = true};
        snprintf(acpi.name, sizeof(acpi.name), "V%03u", n % 1000);
        ret = board_describe(b, &acpi);
    }
    return ret ? err_prefix(ret, "virtio-%s", vdev->ops->name) : 0;
}
