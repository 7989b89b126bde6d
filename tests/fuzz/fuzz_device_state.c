/* libFuzzer target: every device's snapshot load fed hostile saved state.
 * The first byte picks a device — i8042, the 8250, the CMOS RTC, the ACPI
 * PM registers, the 8254 PIT, virtio-pci (its configuration space, MSI-X
 * table, transport registers, queues and the model behind it: a balloon or
 * pmem), virtio-mmio (a balloon) —; the device is brought to a running
 * state and saved, and the input then edits the saved record as a crafted
 * state file would (any value replaced by a small number, a boundary such
 * as 127/128/255/256/65535/2^32/2^64-1, a nearby number, a string of any
 * length, a bool, null, an empty or longer list, or removed; CRCs do not
 * stop anyone). If the load accepts it, the guest then drives the device
 * (ports, registers, notifies) and the state is saved and loaded again,
 * which must succeed; no index may leave its array (checked, as ASan cannot
 * see inside a struct) and every guest address stays in guest RAM (ASan).
 *
 *   make fuzz-targets && build/fuzz/fuzz_device_state tests/fuzz/corpus/device_state */
#include <json-c/json.h>
#include <stdio.h>
#include <unistd.h>

#include "bus/pci/msix.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/balloon.h"
#include "virtio/pmem.h"
#include "virtio/transport_mmio.h"
#include "virtio/transport_pci.h"

#include "board_stubs.h"
#include "legacy_machine.h"

int board_cmdline_append(struct board *b, const char *fmt, ...)
{
    (void)b, (void)fmt;
    abort();
}

#define MEM (1ull << 20)
#define BAR 0xc1010000ull
#define MMIO_WINDOW 0xc0001000ull
#define MAX_EDITS 8
#define MAX_SLOTS 512

enum { D_I8042, D_SERIAL, D_RTC, D_ACPI_PM, D_PIT, D_PCI_BALLOON, D_PCI_PMEM, D_MMIO_BALLOON,
       NR_DEVICES };

struct input {
    const uint8_t *p;
    size_t left;
};

static uint64_t take(struct input *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v = v << 8 | (in->left ? *in->p : 0);
        if (in->left)
            in->p++, in->left--;
    }
    return v;
}

/* --- editing a record ------------------------------------------------------ */

/* A place in the record: a member of an object or an element of a list. */
struct slot {
    struct json_object *parent;
    const char *key; /* NULL: element 'index' of a list */
    size_t index;
};

static void collect(struct json_object *o, struct slot *s, size_t *n)
{
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val) {
            if (*n < MAX_SLOTS)
                s[(*n)++] = (struct slot){o, key, 0};
            collect(val, s, n);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            if (*n < MAX_SLOTS)
                s[(*n)++] = (struct slot){o, NULL, i};
            collect(json_object_array_get_idx(o, i), s, n);
        }
    }
}

static const uint64_t boundaries[] = {
    0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 129, 255, 256, 257, 1023, 1024,
    4095, 4096, 10000, 32767, 32768, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff,
    0x100000000ull, 0xfffff000, MEM - 1, MEM, 0x7fffffffffffffffull, 0x8000000000000000ull,
    UINT64_MAX,
};

static struct json_object *hex_string(struct input *in)
{
    size_t len = (size_t)take(in, 2) % 600;
    char *text = malloc(len + 1);
    uint8_t fill = (uint8_t)take(in, 1);
    for (size_t i = 0; i < len; i++)
        text[i] = fill & 0x80 ? (char)fill : "0123456789abcdef"[(fill + i) % 16];
    text[len] = '\0';
    struct json_object *v = json_object_new_string_len(text, (int)len);
    free(text);
    return v;
}

static struct json_object *new_value(struct input *in, struct json_object *old)
{
    unsigned kind = (unsigned)take(in, 1);
    switch (kind % 10) {
    case 0: return json_object_new_uint64(take(in, 1));
    case 1: return json_object_new_uint64(boundaries[take(in, 1) % ARRAY_SIZE(boundaries)]);
    case 2: { /* near the old value */
        int64_t delta = (int8_t)take(in, 1);
        return json_object_new_uint64(json_object_get_uint64(old) + (uint64_t)delta);
    }
    case 3: return json_object_new_int64(-(int64_t)take(in, 1) - 1);
    case 4: return hex_string(in);
    case 5: return json_object_new_boolean(kind & 0x80);
    case 6: return json_object_new_array();
    case 7: { /* a list one longer, or the old value twice in a list */
        struct json_object *a = json_object_new_array();
        if (json_object_is_type(old, json_type_array))
            for (size_t i = 0; i < json_object_array_length(old); i++)
                json_object_array_add(a, json_object_get(json_object_array_get_idx(old, i)));
        json_object_array_add(a, json_object_get(old));
        return a;
    }
    case 8: return json_object_new_double(-0.5);
    default: return NULL; /* JSON null */
    }
}

static void edit(struct rec r, struct input *in)
{
    static struct slot slots[MAX_SLOTS];
    size_t n = 0;
    collect(r.obj, slots, &n);
    if (!n)
        return;
    struct slot *s = &slots[take(in, 2) % n];
    struct json_object *old = s->key ? json_object_object_get(s->parent, s->key)
                                     : json_object_array_get_idx(s->parent, s->index);
    if (take(in, 1) % 16 == 0) { /* removed */
        if (s->key)
            json_object_object_del(s->parent, s->key);
        else
            json_object_array_del_idx(s->parent, s->index, 1);
        return;
    }
    struct json_object *v = new_value(in, old);
    if (s->key)
        json_object_object_add(s->parent, s->key, v); /* replaces (and frees) the old */
    else
        json_object_array_put_idx(s->parent, s->index, v);
}

/* The record as a state file would give it back: text, parsed again. */
static struct rec reparse(struct rec r)
{
    size_t len;
    const char *text = rec_text(r, &len);
    struct rec back;
    if (rec_parse(text, len, &back))
        abort(); /* the record layer must read what it wrote */
    rec_free(r);
    return back;
}

/* --- the virtio side ----------------------------------------------------------- */

#include "fake_msi.h"

struct virtio_side {
    struct guest_mem gm;
    struct evloop loop;
    struct bus mmio;
    struct pci_bus pci;
    struct pci_platform plat;
    struct virtio_pci vp;
    struct virtio_mmio vm;
    struct virtio_dev *vdev;
    bool is_pci;
};

static int pmem_pipe = -1;

static struct virtio_dev *new_model(struct virtio_side *v, bool pmem)
{
    if (pmem) {
        struct virtio_pmem *pm = malloc(sizeof(*pm)); /* freed by its destroy op */
        const struct pmem_backing backing = {pmem_pipe, 2 << 20, 0x100000000ull, 2 << 20};
        virtio_pmem_init(pm, &v->gm, &backing, false, "fuzz");
        return &pm->vdev;
    }
    struct virtio_balloon *b = malloc(sizeof(*b));
    const struct balloon_config cfg = {true, 0, true, 0, true, true};
    if (virtio_balloon_init(b, &v->gm, &cfg, NULL))
        abort();
    return &b->vdev;
}

/* A driver that got as far as running every queue, MSI-X on. */
static void drive_to_running(struct virtio_side *v)
{
    struct virtio_dev *d = v->vdev;
    for (unsigned i = 0; i < d->ops->num_queues; i++)
        d->queues[i] = (struct virtq){.size = 8, .desc_gpa = 0x1000 + 0x1000ull * i,
                                      .avail_gpa = 0x10000 + 0x1000ull * i,
                                      .used_gpa = 0x20000 + 0x1000ull * i, .ready = true};
    d->driver_features = d->device_features;
    virtio_dev_set_status(d, 0x0f);
    if (v->is_pci) {
        pci_config_write(&v->pci, 1, 0, PCI_COMMAND, 2, 0x6); /* memory, bus master */
        pci_config_write(&v->pci, 1, 0, v->vp.msix.cap + 2, 2, 0x8000); /* MSI-X on */
    }
}

static void virtio_build(struct virtio_side *v, int kind)
{
    v->is_pci = kind != D_MMIO_BALLOON;
    bus_init(&v->mmio, "mmio");
    pci_bus_init(&v->pci);
    v->plat = (struct pci_platform){.mmio = &v->mmio, .loop = &v->loop, .msi = &fp_msi};
    v->vdev = new_model(v, kind == D_PCI_PMEM);
    int ret = v->is_pci ? virtio_pci_init(&v->vp, v->vdev, &v->pci, 1, BAR,
                                          (struct irq_line){&lm_sink, 16}, &v->plat)
                        : virtio_mmio_init(&v->vm, v->vdev, &v->mmio, MMIO_WINDOW,
                                           (struct irq_line){&lm_sink, 5}, &v->plat);
    if (ret) {
        fprintf(stderr, "transport: %s\n", err_msg());
        abort();
    }
    drive_to_running(v);
}

static void virtio_destroy(struct virtio_side *v)
{
    if (v->is_pci)
        virtio_pci_destroy(&v->vp);
    else
        virtio_mmio_destroy(&v->vm);
    v->vdev->ops->destroy(v->vdev);
    pci_bus_destroy(&v->pci);
    bus_destroy(&v->mmio);
}

/* The guest after the restore: registers, configuration space, notifies. */
static void virtio_access(struct virtio_side *v, struct input *in)
{
    unsigned op = (unsigned)take(in, 1);
    uint64_t off = take(in, 2);
    uint32_t val = (uint32_t)take(in, 4);
    unsigned len = 1u << (op >> 6);
    uint8_t buf[8];
    le32_store(buf, val), le32_store(buf + 4, 0);
    uint64_t base = v->is_pci ? v->vp.bar_addr : MMIO_WINDOW;
    uint64_t span = v->is_pci ? VIRTIO_PCI_BAR_SIZE : VIRTIO_MMIO_SIZE;
    switch (op % 6) {
    case 0: bus_write(&v->mmio, base + off % span, buf, len); break;
    case 1: bus_read(&v->mmio, base + off % span, buf, len); break;
    case 2: pci_config_write(&v->pci, 1, 0, (unsigned)off % 256, len > 4 ? 4 : len, val); break;
    case 3: (void)pci_config_read(&v->pci, 1, 0, (unsigned)off % 256, len > 4 ? 4 : len); break;
    case 4: /* the driver's memory: rings and buffers */
        (void)gm_write(&v->gm, off << 4, buf, 8);
        break;
    case 5: { /* a notify of any queue, wherever the transport takes it */
        pthread_mutex_lock(&v->vdev->lock);
        if (virtio_dev_queue_running(v->vdev, val % v->vdev->ops->num_queues))
            v->vdev->ops->queue_notify(v->vdev, val % v->vdev->ops->num_queues);
        pthread_mutex_unlock(&v->vdev->lock);
        break;
    }
    }
}

static void broken(const char *what, unsigned long long value)
{
    fprintf(stderr, "after the load: %s is %llu\n", what, value);
    abort();
}

static void virtio_check(const struct virtio_side *v)
{
    const struct virtio_dev *d = v->vdev;
    for (unsigned i = 0; i < d->ops->num_queues; i++)
        if (d->queues[i].size > d->ops->queue_max_size)
            broken("a queue's size", d->queues[i].size);
    /* (queue_select may be anything: a guest writes any value there too,
     * and every use checks it.) */
    if (v->is_pci && v->vp.msix.nr_vectors > MSIX_MAX_VECTORS)
        broken("the MSI-X vectors", v->vp.msix.nr_vectors);
}

/* --- one device, saved, edited, loaded, driven, saved and loaded again ------------ */

static void save(struct legacy_machine *m, struct virtio_side *v, int kind, struct rec r)
{
    switch (kind) {
    case D_I8042: i8042_save(&m->kbc, r); break;
    case D_SERIAL: serial_save(&m->com1, r); break;
    case D_RTC: rtc_cmos_save(&m->rtc, r); break;
    case D_ACPI_PM: acpi_pm_save(&m->pm, r); break;
    case D_PIT: pit_save(&m->pit, r); break;
    default: v->is_pci ? virtio_pci_save(&v->vp, r) : virtio_mmio_save(&v->vm, r); break;
    }
}

static int load(struct legacy_machine *m, struct virtio_side *v, int kind, struct rec r)
{
    switch (kind) {
    case D_I8042: return i8042_load(&m->kbc, r);
    case D_SERIAL: return serial_load(&m->com1, r);
    case D_RTC: return rtc_cmos_load(&m->rtc, r);
    case D_ACPI_PM: return acpi_pm_load(&m->pm, r);
    case D_PIT: return pit_load(&m->pit, r);
    default: return v->is_pci ? virtio_pci_load(&v->vp, r) : virtio_mmio_load(&v->vm, r);
    }
}

static void guest_access(struct legacy_machine *m, struct virtio_side *v, int kind,
                         struct input *in)
{
    if (kind >= D_PCI_BALLOON) {
        virtio_access(v, in);
        virtio_check(v);
        return;
    }
    unsigned op = (unsigned)take(in, 1);
    uint16_t port = lm_ports[take(in, 1) % LM_NR_PORTS];
    uint8_t buf[4] = {(uint8_t)take(in, 1), (uint8_t)take(in, 1), 0, 0};
    if (op & 1)
        bus_write(&m->pio, port, buf, 1u << (op >> 6) % 3);
    else
        bus_read(&m->pio, port, buf, 1u << (op >> 6) % 3);
    if (op & 2) {
        lm_now += 1000000ull << (op >> 2 & 15);
        if (lm_pit_deadline && lm_now >= lm_pit_deadline)
            pit_timer_expired(&m->pit, lm_now);
    }
    lm_check_invariants(m);
}

static void run(struct legacy_machine *m, struct virtio_side *v, int kind, struct input *in)
{
    struct rec r = rec_new();
    save(m, v, kind, r);
    r = reparse(r);
    unsigned edits = 1 + (unsigned)take(in, 1) % MAX_EDITS;
    for (unsigned i = 0; i < edits && in->left; i++)
        edit(r, in);
    r = reparse(r);
    int ret = load(m, v, kind, r);
    rec_free(r);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "device %d: load %s\n", kind, ret ? err_msg() : "accepted");
    if (ret)
        return; /* refused: nothing of it may be used (the VM is not started) */
    if (kind < D_PCI_BALLOON)
        lm_check_invariants(m);
    else
        virtio_check(v);
    for (unsigned i = 0; i < 64 && in->left; i++)
        guest_access(m, v, kind, in);
    /* Whatever state the load accepted and the guest then made is saved and
     * restored again. */
    r = rec_new();
    save(m, v, kind, r);
    r = reparse(r);
    if (load(m, v, kind, r)) {
        fprintf(stderr, "device %d refused its own state: %s\n", kind, err_msg());
        abort();
    }
    rec_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct legacy_machine m;
    static struct virtio_side v;
    if (pmem_pipe < 0) {
        int p[2];
        if (pipe(p) || gm_create_anon(&v.gm, MEM, 1ull << 32) || evloop_init(&v.loop))
            abort();
        pmem_pipe = p[0];
        close(p[1]);
        log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_ERROR - 1);
    }
    struct input in = {data, size};
    int kind = (int)(take(&in, 1) % NR_DEVICES);
    if (kind < D_PCI_BALLOON) {
        lm_build(&m);
        run(&m, &v, kind, &in);
        lm_destroy(&m);
    } else {
        memset(v.gm.regions[0].hva, 0, 0x30000);
        virtio_build(&v, kind);
        run(&m, &v, kind, &in);
        virtio_destroy(&v);
    }
    return 0;
}
