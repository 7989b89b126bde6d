/* libFuzzer target: a hostile driver against virtio-balloon. Each step of
 * the input picks a queue, writes a descriptor table and buffer bytes into
 * guest memory, makes a chain available and notifies; between steps the
 * host changes the target and asks for statistics. Every page number and
 * range the guest names must stay inside guest RAM (ASan watches the rest). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/util.h"
#include "virtio/balloon.h"

#define MEM (4ull << 20)
#define QSIZE 8
#define DATA 0x100000ull
#define STEP (2 + 16 * QSIZE + 256)
#define DESC(q) (0x1000 + 0x1000ull * (q)) /* each queue's rings */
#define AVAIL(q) (0x10000 + 0x1000ull * (q))
#define USED(q) (0x20000 + 0x1000ull * (q))

/* The board side is not under test (the target links the device alone). */
#include "board_stubs.h"

static void t_queue(struct virtio_dev *v, unsigned q) { (void)v, (void)q; }
static void t_config(struct virtio_dev *v) { (void)v; }
static const struct virtio_transport_ops t_ops = {.notify_queue = t_queue,
                                                   .notify_config = t_config};

static struct guest_mem gm;

/* The balloon discards pages with madvise(MADV_DONTNEED), one call per run
 * of frames: with random frame numbers that is a system call per page, and
 * those took half of each input's time. For private anonymous memory (this
 * guest's) the call's only visible effect is that the pages read as zeros,
 * so small ranges in guest RAM are zeroed here instead; anything else goes
 * to the kernel. */
int madvise(void *addr, size_t len, int advice)
{
    uint8_t *p = addr, *ram = gm.regions[0].hva;
    if (advice == MADV_DONTNEED && len <= 0x10000 && p >= ram && p - ram <= (ptrdiff_t)(MEM - len)) {
        memset(p, 0, len);
        return 0;
    }
    return (int)syscall(SYS_madvise, addr, len, advice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        if (gm_create_anon(&gm, MEM, 1ull << 32))
            abort();
        ready = true;
    }
    uint8_t *mem = gm.regions[0].hva;
    /* Zero what the input writes (rings and buffer) rather than the whole
     * first MiB: pages the balloon gave back read as zeros already, and
     * touching them all again cost more than the input itself. */
    for (unsigned i = 0; i < 5; i++) {
        memset(mem + DESC(i), 0, 16 * QSIZE);
        memset(mem + AVAIL(i), 0, 6 + 2 * QSIZE);
        memset(mem + USED(i), 0, 6 + 8 * QSIZE);
    }
    memset(mem + DATA, 0, 256);
    struct balloon_config cfg = {true, 0, true, 1, true, true};
    struct virtio_balloon b;
    if (virtio_balloon_init(&b, &gm, &cfg, NULL))
        abort();
    b.vdev.transport = &t_ops;
    uint16_t avail[5] = {0};
    for (unsigned i = 0; i < 5; i++) {
        struct virtq *q = &b.vdev.queues[i];
        *q = (struct virtq){.size = QSIZE, .desc_gpa = DESC(i), .avail_gpa = AVAIL(i),
                            .used_gpa = USED(i), .ready = true};
    }
    b.vdev.driver_features = (1ull << VIRTIO_F_VERSION_1) | b.vdev.ops->features(&b.vdev);
    virtio_dev_set_status(&b.vdev, 0x0f);
    for (size_t off = 0; off + STEP <= size; off += STEP) {
        const uint8_t *s = data + off;
        unsigned qi = s[0] % 5; /* inflate, deflate, statistics, hinting, reporting */
        memcpy(mem + b.vdev.queues[qi].desc_gpa, s + 2, 16 * QSIZE);
        memcpy(mem + DATA, s + 2 + 16 * QSIZE, 256);
        uint64_t a = b.vdev.queues[qi].avail_gpa;
        le16_store(mem + a + 4 + 2u * (avail[qi] % QSIZE), s[1] % QSIZE);
        le16_store(mem + a + 2, ++avail[qi]);
        pthread_mutex_lock(&b.vdev.lock);
        b.vdev.ops->queue_notify(&b.vdev, qi);
        pthread_mutex_unlock(&b.vdev.lock);
        if (virtio_balloon_set_target(&b, s[1]) == 0)
            virtio_balloon_request_stats(&b);
        if (s[0] & 0x80) /* a hinting run starts or ends between notifies */
            (s[0] & 0x40) ? virtio_balloon_start_hinting(&b, s[0] & 0x20)
                          : virtio_balloon_stop_hinting(&b);
        if (b.vdev.status & VIRTIO_STATUS_NEEDS_RESET)
            break;
    }
    virtio_balloon_cleanup(&b);
    return 0;
}
