/* libFuzzer target: a hostile driver against virtio-pmem's request queue.
 * The input's first byte picks the negotiated features (indirect
 * descriptors, event index), whether the file is read-only and whether its
 * fsync fails; then each step writes a descriptor table (loops, out-of-RAM
 * and zero-length buffers, a request split anywhere, a reply buffer too
 * short or read-only) and request bytes into guest memory, makes one or two
 * chains available and notifies, and reads the device configuration at
 * any offset and size. Every guest address must stay in guest RAM (ASan
 * watches the rest); the device answers each chain or breaks the queue.
 *
 *   make fuzz-targets && build/fuzz/fuzz_virtio_pmem tests/fuzz/corpus/virtio_pmem */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/board.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/pmem.h"

#define MEM (1ull << 20)
#define QSIZE 8
#define DESC 0x1000ull
#define AVAIL 0x2000ull
#define USED 0x3000ull
#define DATA 0x10000ull
#define DATA_BYTES 64
#define STEP (4 + 16 * QSIZE + DATA_BYTES)
#define PMEM_GPA 0x100000000ull
#define PMEM_SIZE (2ull << 20)

/* The board side is not under test (the target links the device alone). */
#include "board_stubs.h"

static void t_queue(struct virtio_dev *v, unsigned q) { (void)v, (void)q; }
static void t_config(struct virtio_dev *v) { (void)v; }
static const struct virtio_transport_ops t_ops = {.notify_queue = t_queue,
                                                   .notify_config = t_config};

/* A file on tmpfs (fsync is cheap there: no disk behind it, so the target
 * stays fast) and a pipe, on which fsync fails with EINVAL. */
static int file_fd, pipe_fd;

static void setup_once(struct guest_mem *gm)
{
    char path[] = "/dev/shm/ember-fuzz-pmem-XXXXXX";
    file_fd = mkstemp(path);
    if (file_fd < 0) {
        char alt[] = "/tmp/ember-fuzz-pmem-XXXXXX";
        file_fd = mkstemp(alt);
        if (file_fd < 0)
            abort();
        unlink(alt);
    } else {
        unlink(path);
    }
    int p[2];
    if (pipe(p))
        abort();
    pipe_fd = p[0];
    close(p[1]);
    if (gm_create_anon(gm, MEM, 1ull << 32))
        abort();
    log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_ERROR);
}

static void start(struct virtio_pmem *pm, uint8_t mode)
{
    struct virtio_dev *vdev = &pm->vdev;
    vdev->transport = &t_ops;
    vdev->queues[0] = (struct virtq){.size = QSIZE, .desc_gpa = DESC, .avail_gpa = AVAIL,
                                     .used_gpa = USED, .ready = true};
    vdev->driver_features = 1ull << VIRTIO_F_VERSION_1;
    if (mode & 4)
        vdev->driver_features |= 1ull << VIRTIO_F_INDIRECT_DESC;
    if (mode & 8)
        vdev->driver_features |= 1ull << VIRTIO_F_EVENT_IDX;
    virtio_dev_set_status(vdev, 0x0f);
}

static void publish(uint8_t *mem, uint16_t *avail, uint8_t head)
{
    le16_store(mem + AVAIL + 4 + 2u * (*avail % QSIZE), head % QSIZE);
    le16_store(mem + AVAIL + 2, ++*avail);
}

static void run_step(struct virtio_pmem *pm, uint8_t *mem, const uint8_t *s, uint16_t *avail)
{
    memcpy(mem + DESC, s + 4, 16 * QSIZE);
    memcpy(mem + DATA, s + 4 + 16 * QSIZE, DATA_BYTES);
    publish(mem, avail, s[0]);
    if (s[1] & 1) /* sometimes a second chain in the same notification */
        publish(mem, avail, s[1] >> 1);
    if (s[1] & 0x80) /* the driver's used_event: when it wants an interrupt */
        le16_store(mem + AVAIL + 4 + 2u * QSIZE, s[2]);
    pthread_mutex_lock(&pm->vdev.lock);
    pm->vdev.ops->queue_notify(&pm->vdev, 0);
    pthread_mutex_unlock(&pm->vdev.lock);
    uint8_t cfg[8];
    pm->vdev.ops->config_read(&pm->vdev, s[3] % 24, cfg, 1u << (s[2] % 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem gm;
    static struct virtio_pmem pm;
    if (!file_fd)
        setup_once(&gm);
    if (size < 1)
        return 0;
    uint8_t *mem = gm.regions[0].hva;
    memset(mem + DESC, 0, USED + 0x1000 - DESC);
    memset(mem + DATA, 0, DATA_BYTES);
    uint8_t mode = data[0];
    const struct pmem_backing backing = {mode & 2 ? pipe_fd : file_fd, PMEM_SIZE, PMEM_GPA,
                                         PMEM_SIZE};
    virtio_pmem_init(&pm, &gm, &backing, mode & 1, "fuzz-pmem");
    start(&pm, mode);
    uint16_t avail = 0;
    for (size_t off = 1; off + STEP <= size; off += STEP) {
        run_step(&pm, mem, data + off, &avail);
        if (pm.vdev.status & VIRTIO_STATUS_NEEDS_RESET)
            break;
    }
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "pmem: status %#x flushes %llu fails %llu\n", pm.vdev.status,
                (unsigned long long)pm.flushes, (unsigned long long)pm.fails);
    virtio_dev_destroy(&pm.vdev);
    return 0;
}
