/* KVM's own counters for a vCPU, from its binary statistics file
 * (KVM_GET_STATS_FD, Linux 5.14+): how many exits the guest took in all,
 * including the ones KVM handled in the kernel that ember never sees. ember
 * -v logs them when the VM ends, beside its own exit counts; the boot
 * profile reads them. A kernel without the file just has no such line. */
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "accel/kvm_internal.h"

/* The counters worth a line, in the order they are logged: KVM's name and
 * ember's label for it (kvm_: these count every exit, ember's own exit
 * counts only those that reach it). */
static const struct {
    const char *stat, *label;
} wanted[] = {
    {"exits", "kvm_exits"},
    {"io_exits", "kvm_io_exits"},
    {"mmio_exits", "kvm_mmio_exits"},
    {"irq_exits", "kvm_irq_exits"},
    {"halt_exits", "kvm_halt_exits"},
    {"irq_window_exits", "kvm_irq_window_exits"},
    {"request_irq_exits", "kvm_request_irq_exits"},
    {"signal_exits", "kvm_signal_exits"},
    {"irq_injections", "kvm_irq_injections"},
    {"insn_emulation", "kvm_insn_emulation"},
    {"hypercalls", "kvm_hypercalls"},
    {"host_state_reload", "kvm_host_state_reload"},
};
#define NR_WANTED (sizeof(wanted) / sizeof(wanted[0]))
_Static_assert(NR_WANTED <= ACCEL_MAX_COUNTERS, "more counters than a backend may report");

#define STATS_NAME_MAX 256
#define STATS_DESC_MAX 4096

struct kvm_vcpu_stats {
    int fd;
    size_t nr;
    struct {
        const char *name;
        off_t offset; /* of its one u64 in the file */
    } items[NR_WANTED];
};

static int wanted_index(const char *name)
{
    for (size_t i = 0; i < NR_WANTED; i++)
        if (!strcmp(name, wanted[i].stat))
            return (int)i;
    return -1;
}

/* Takes the descriptors' table apart: each a fixed head and a name of
 * name_size bytes, NUL-padded. Only plain cumulative u64s are kept. */
static void find_counters(struct kvm_vcpu_stats *s, const struct kvm_stats_header *h,
                          const uint8_t *descs)
{
    off_t at[NR_WANTED];
    memset(at, 0, sizeof(at));
    size_t stride = sizeof(struct kvm_stats_desc) + h->name_size;
    for (uint32_t i = 0; i < h->num_desc; i++) {
        const struct kvm_stats_desc *d = (const void *)(descs + i * stride);
        char name[STATS_NAME_MAX + 1];
        memcpy(name, d->name, h->name_size);
        name[h->name_size] = '\0';
        int k = wanted_index(name);
        if (k >= 0 && d->size == 1 &&
            (d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_CUMULATIVE)
            at[k] = (off_t)h->data_offset + d->offset;
    }
    for (size_t k = 0; k < NR_WANTED; k++) {
        if (!at[k])
            continue;
        s->items[s->nr].name = wanted[k].label;
        s->items[s->nr++].offset = at[k];
    }
}

struct kvm_vcpu_stats *kvm_stats_open(int vcpu_fd)
{
    struct kvm_vcpu_stats *s = calloc(1, sizeof(*s));
    if (!s || (s->fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL)) < 0) {
        free(s);
        return NULL;
    }
    struct kvm_stats_header h;
    uint8_t *descs = NULL;
    if (pread(s->fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && h.name_size > 0 &&
        h.name_size <= STATS_NAME_MAX && h.num_desc <= STATS_DESC_MAX) {
        size_t len = h.num_desc * (sizeof(struct kvm_stats_desc) + h.name_size);
        descs = malloc(len ? len : 1);
        if (descs && pread(s->fd, descs, len, h.desc_offset) == (ssize_t)len)
            find_counters(s, &h, descs);
    }
    free(descs);
    if (!s->nr) {
        kvm_stats_close(s);
        return NULL;
    }
    return s;
}

size_t kvm_stats_read(const struct kvm_vcpu_stats *s, struct accel_counter *out)
{
    size_t n = 0;
    for (size_t i = 0; s && i < s->nr; i++) {
        uint64_t value;
        if (pread(s->fd, &value, sizeof(value), s->items[i].offset) == (ssize_t)sizeof(value))
            out[n++] = (struct accel_counter){s->items[i].name, value};
    }
    return n;
}

void kvm_stats_close(struct kvm_vcpu_stats *s)
{
    if (s) {
        close(s->fd);
        free(s);
    }
}
