/* libFuzzer target: a hostile guest driving the PCI and virtio register
 * interfaces. Behind a PCI bus are virtio-rng (slot 1), virtio-console
 * (slot 2) and virtio-blk on an image file (slot 3); on the MMIO bus,
 * beside their BARs, are a virtio-mmio rng and console. Each 16-byte step
 * of the input is one guest action: a configuration-space read or write of
 * any size and offset (directly or through the 0xCF8/0xCFC ports: BAR
 * sizing and moves, the command register, MSI-X control, the virtio PCI
 * configuration access window), an MMIO read or write of any size anywhere
 * in a BAR or virtio-mmio window or at any address (common configuration
 * with any order of status writes, queue addresses and enables, notifies,
 * ISR, device configuration, the MSI-X table and PBA), a write into guest
 * RAM (descriptor tables and rings), or the event loop running (disk
 * completions, queues kicked to continue, the console host draining). The
 * devices' request parsing is reached the way a guest reaches it. ASan
 * watches every access; the image must keep its size. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus/pci/msix.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/rng.h"
#include "virtio/transport_mmio.h"
#include "virtio/transport_pci.h"

#define MEM (1ull << 20)
#define STEP 16
#define IMAGE_SECTORS 64
#define NR_PCI 3
#define NR_MMIO 2
#define MMIO_BASE 0xc0001000ull
#define CONSOLE_TX_CHUNK_MAX 65536
#define BAR_BASE 0xc1000000ull /* slot n's BAR at BAR_BASE + n * 64 KiB */

/* The board side is not under test (the target links the devices alone). */
#include "board_stubs.h"
struct irq_line board_irq(const struct board *b, uint32_t gsi)
{
    (void)b, (void)gsi;
    abort();
}
struct device *board_add(struct board *b, const struct device_ops *ops, void *dev,
                         const char *name)
{
    (void)b, (void)ops, (void)dev, (void)name;
    abort();
}
int board_describe(struct board *b, const struct acpi_device *desc)
{
    (void)b, (void)desc;
    abort();
}
int board_cmdline_append(struct board *b, const char *fmt, ...)
{
    (void)b, (void)fmt;
    abort();
}
void board_take_console(struct board *b, board_input_fn input, void *dev)
{
    (void)b, (void)input, (void)dev;
    abort();
}

/* --- a platform that records instead of delivering ---------------------- */

#include "fake_msi.h"

static void sink_set(void *ctx, uint32_t gsi, bool level)
{
    (void)ctx, (void)gsi, (void)level;
}
static const struct irq_sink_ops sink_ops = {.set_line = sink_set};
static const struct irq_sink sink = {&sink_ops, NULL};

/* The console's host: takes 'room' bytes, then asks to be called back. It
 * counts what it took in this step: a device's work per notification (or
 * per call-back, or per turn of the loop) is bounded, so a guest cannot
 * hold the event loop (six such rounds at most in a step). */
#define STEP_BYTES_MAX (6ull * VIRTIO_CONSOLE_TX_BUDGET)
struct console_host {
    size_t room;
    uint64_t step_bytes;
    void (*writable)(void *arg);
    void *arg;
};
static size_t ch_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct console_host *h = ctx;
    static uint8_t out[CONSOLE_TX_CHUNK_MAX];
    size_t n = MIN(MIN(len, h->room), sizeof(out));
    memcpy(out, buf, n); /* ASan checks the bytes the device hands over */
    h->room -= n;
    h->step_bytes += n;
    return n;
}
static void ch_input_ready(void *ctx)
{
    (void)ctx;
}
static void ch_wait_writable(void *ctx, void (*fn)(void *arg), void *arg)
{
    struct console_host *h = ctx;
    h->writable = fn;
    h->arg = arg;
}
static const struct chardev_host_ops ch_ops = {ch_write, ch_input_ready, ch_wait_writable};

static char image[] = "/tmp/ember-fuzz-pci-XXXXXX";

static void check_image_size(void)
{
    struct stat st;
    if (stat(image, &st) < 0 || st.st_size != IMAGE_SECTORS * VIRTIO_BLK_SECTOR)
        abort(); /* a guest wrote outside its disk */
}

/* --- the machine -------------------------------------------------------- */

struct machine {
    struct bus mmio;
    struct pci_bus pci;
    struct pci_platform plat;
    struct virtio_rng *rng, *mmio_rng;
    struct virtio_console *con, *mmio_con;
    struct virtio_blk *blk;
    struct virtio_pci vp[NR_PCI];
    struct virtio_mmio vm[NR_MMIO];
    struct console_host host[NR_MMIO];
};

static void fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, err_msg());
    abort();
}

static void build(struct machine *m, const struct guest_mem *gm, struct evloop *loop)
{
    bus_init(&m->mmio, "mmio");
    pci_bus_init(&m->pci);
    m->plat = (struct pci_platform){.mmio = &m->mmio, .loop = loop, .msi = &fp_msi};
    m->rng = calloc(1, sizeof(*m->rng));
    m->mmio_rng = calloc(1, sizeof(*m->mmio_rng));
    m->con = calloc(1, sizeof(*m->con));
    m->mmio_con = calloc(1, sizeof(*m->mmio_con));
    /* virtio-blk's request table is large: one allocation for all inputs
     * (virtio_blk_init clears it), so fresh pages are not faulted in each time. */
    static struct virtio_blk *blk;
    if (!blk && !(blk = malloc(sizeof(*blk))))
        abort();
    m->blk = blk;
    if (!m->rng || !m->mmio_rng || !m->con || !m->mmio_con || !m->blk)
        abort();
    struct blockfile bf;
    if (virtio_rng_init(m->rng, gm, NULL, NULL) || virtio_rng_init(m->mmio_rng, gm, NULL, NULL))
        fail("rng");
    struct chardev_host h0 = {&ch_ops, &m->host[0]}, h1 = {&ch_ops, &m->host[1]};
    virtio_console_init(m->con, gm, &h0);
    virtio_console_init(m->mmio_con, gm, &h1);
    if (blockfile_open(&bf, image, false, false) ||
        virtio_blk_init(m->blk, gm, &bf, "fuzz-disk", loop))
        fail("blk");
    struct virtio_dev *pci_devs[NR_PCI] = {&m->rng->vdev, &m->con->vdev, &m->blk->vdev};
    for (unsigned i = 0; i < NR_PCI; i++)
        if (virtio_pci_init(&m->vp[i], pci_devs[i], &m->pci, i + 1, BAR_BASE + (i + 1) * 0x10000,
                            (struct irq_line){&sink, 16 + i}, &m->plat))
            fail("virtio-pci");
    struct virtio_dev *mmio_devs[NR_MMIO] = {&m->mmio_rng->vdev, &m->mmio_con->vdev};
    for (unsigned i = 0; i < NR_MMIO; i++)
        if (virtio_mmio_init(&m->vm[i], mmio_devs[i], &m->mmio, MMIO_BASE + i * 0x1000,
                             (struct irq_line){&sink, 5 + i}, &m->plat))
            fail("virtio-mmio");
}

/* FUZZ_VERBOSE=1: what each device got to (to check the seeds reach it). */
static void report(struct virtio_dev *vdev)
{
    struct device_counter c[16];
    size_t n = virtio_dev_counters(vdev, c);
    fprintf(stderr, "%s: status %#x", vdev->ops->name, vdev->status);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s=%llu", c[i].name, (unsigned long long)c[i].value);
    fprintf(stderr, "\n");
}

static void tear_down(struct machine *m)
{
    for (unsigned i = 0; getenv("FUZZ_VERBOSE") && i < NR_PCI + NR_MMIO; i++)
        report(i < NR_PCI ? m->vp[i].vdev : m->vm[i - NR_PCI].vdev);
    for (unsigned i = 0; i < NR_PCI; i++) {
        virtio_pci_destroy(&m->vp[i]);
        if (m->vp[i].vdev == &m->blk->vdev)
            virtio_blk_destroy(m->blk); /* kept for the next input */
        else
            m->vp[i].vdev->ops->destroy(m->vp[i].vdev); /* frees the model */
    }
    for (unsigned i = 0; i < NR_MMIO; i++) {
        virtio_mmio_destroy(&m->vm[i]);
        m->vm[i].vdev->ops->destroy(m->vm[i].vdev);
    }
    pci_bus_destroy(&m->pci);
    bus_destroy(&m->mmio);
}

/* Where target t's accesses go: a device's BAR as the guest last placed
 * it, a virtio-mmio window, or anywhere. */
static uint64_t target_addr(struct machine *m, uint8_t t, uint16_t off, const uint8_t *v)
{
    t %= NR_PCI + NR_MMIO + 1;
    if (t < NR_PCI)
        return m->vp[t].bar_addr + off % (VIRTIO_PCI_BAR_SIZE + 0x10);
    if (t < NR_PCI + NR_MMIO)
        return MMIO_BASE + (t - NR_PCI) * 0x1000ull + off % (VIRTIO_MMIO_SIZE + 0x10);
    return le32_load(v) | (uint64_t)off << 32;
}

static void run_loop(struct machine *m, struct evloop *loop, const uint8_t *s)
{
    for (unsigned i = 0; i < NR_MMIO; i++) {
        struct console_host *h = &m->host[i];
        h->room = (size_t)s[2 + i] << (s[4] % 16);
        if (h->writable && (s[1] & (1u << i))) {
            void (*fn)(void *) = h->writable;
            h->writable = NULL;
            fn(h->arg);
        }
    }
    struct virtio_console *cons[NR_MMIO] = {m->con, m->mmio_con};
    if (s[1] & 4) /* host input for either console */
        virtio_console_receive(cons[(s[1] >> 3) & 1], s + 8, s[5] % 9);
    for (int i = 0; i < 4; i++)
        evloop_run_once(loop, 0);
}

static void run_step(struct machine *m, const struct guest_mem *gm, struct evloop *loop,
                     const uint8_t *s)
{
    uint16_t off = le16_load(s + 2);
    const uint8_t *val = s + 8;
    uint8_t buf[8];
    switch (s[0] % 8) {
    case 0: /* configuration space, as the kernel's accessors reach it */
        pci_config_write(&m->pci, s[1] % 5, (s[1] >> 5) & 1, s[2], 1u << (s[4] % 3),
                         le32_load(val));
        break;
    case 1: (void)pci_config_read(&m->pci, s[1] % 5, (s[1] >> 5) & 1, s[2], 1u << (s[4] % 3));
        break;
    case 2: /* the same through ports 0xCF8-0xCFF */
        pci_conf1_bus_ops.write(&m->pci, s[2] % 8, val, 1u << (s[4] % 3));
        break;
    case 3: pci_conf1_bus_ops.read(&m->pci, s[2] % 8, buf, 1u << (s[4] % 3)); break;
    case 4: bus_write(&m->mmio, target_addr(m, s[1], off, val), val, 1u << (s[4] % 4)); break;
    case 5: bus_read(&m->mmio, target_addr(m, s[1], off, val), buf, 1u << (s[4] % 4)); break;
    case 6: { /* the driver's memory: rings, tables, requests */
        uint64_t gpa = (uint64_t)s[1] | (uint64_t)off << 8;
        (void)gm_write(gm, gpa % (MEM + 0x100), val, 1 + s[4] % 8);
        break;
    }
    case 7: run_loop(m, loop, s); break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem gm;
    static struct evloop loop;
    static bool ready;
    if (!ready) {
        int fd = mkstemp(image);
        if (fd < 0 || ftruncate(fd, IMAGE_SECTORS * VIRTIO_BLK_SECTOR) < 0)
            abort();
        close(fd);
        if (gm_create_anon(&gm, MEM, 1ull << 32) || evloop_init(&loop))
            abort();
        log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_ERROR);
        ready = true;
    }
    memset(gm.regions[0].hva, 0, MEM);
    static struct machine m;
    memset(&m, 0, sizeof(m));
    build(&m, &gm, &loop);
    for (size_t off = 0; off + STEP <= size; off += STEP) {
        run_step(&m, &gm, &loop, data + off);
        for (unsigned i = 0; i < NR_MMIO; i++) {
            if (m.host[i].step_bytes > STEP_BYTES_MAX)
                abort(); /* a console sent without a budget */
            m.host[i].step_bytes = 0;
        }
    }
    tear_down(&m);
    check_image_size();
    return 0;
}
