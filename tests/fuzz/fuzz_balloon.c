/* libFuzzer target: a hostile driver against virtio-balloon. Each step of
 * the input picks a queue, writes a descriptor table and buffer bytes into
 * guest memory, makes a chain available and notifies; between steps the
 * host changes the target and asks for statistics. Every page number and
 * range the guest names must stay inside guest RAM (ASan watches the rest). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "virtio/balloon.h"

#define MEM (4ull << 20)
#define QSIZE 8
#define DATA 0x100000ull
#define STEP (2 + 16 * QSIZE + 256)

/* The board side is not under test (the target links the device alone). */
#include "board_stubs.h"

static void t_queue(struct virtio_dev *v, unsigned q) { (void)v, (void)q; }
static void t_config(struct virtio_dev *v) { (void)v; }
static const struct virtio_transport_ops t_ops = {.notify_queue = t_queue,
                                                   .notify_config = t_config};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem gm;
    static bool ready;
    if (!ready) {
        if (gm_create_anon(&gm, MEM, 1ull << 32))
            abort();
        ready = true;
    }
    uint8_t *mem = gm.regions[0].hva;
    memset(mem, 0, DATA + 0x10000);
    struct balloon_config cfg = {true, 0, true, 1, true, true};
    struct virtio_balloon b;
    if (virtio_balloon_init(&b, &gm, &cfg, NULL))
        abort();
    b.vdev.transport = &t_ops;
    uint16_t avail[5] = {0};
    for (unsigned i = 0; i < 5; i++) {
        struct virtq *q = &b.vdev.queues[i];
        *q = (struct virtq){.size = QSIZE, .desc_gpa = 0x1000 + 0x1000ull * i,
                            .avail_gpa = 0x10000 + 0x1000ull * i,
                            .used_gpa = 0x20000 + 0x1000ull * i, .ready = true};
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
