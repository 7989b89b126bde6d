/* libFuzzer target: a hostile driver against virtio-blk on a real image
 * file. Each step of the input writes a descriptor table (addresses,
 * lengths, flags, next links: loops, out-of-RAM buffers, zero lengths, a
 * header split anywhere) and request bytes (type, sector, discard segments)
 * into guest memory, makes one chain available, notifies and lets the
 * image's I/O complete. Whatever the guest asks, the image must keep its
 * size (nothing written past its end) and every guest address must stay in
 * guest RAM (ASan watches the rest); the device may only answer with a
 * status or stop for a reset. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/util.h"
#include "virtio/blk.h"

#define MEM (2ull << 20)
#define QSIZE 8
#define RINGS_END 0x4000ull /* descriptors, available and used rings below */
#define DATA 0x100000ull
#define DATA_BYTES 512
#define STEP (2 + 16 * QSIZE + DATA_BYTES)
#define IMAGE_SECTORS 64

/* The board side is not under test (the target links the device alone). */
#include "board_stubs.h"

static void t_queue(struct virtio_dev *v, unsigned q) { (void)v, (void)q; }
static void t_config(struct virtio_dev *v) { (void)v; }
static const struct virtio_transport_ops t_ops = {.notify_queue = t_queue,
                                                   .notify_config = t_config};

static char image[] = "/tmp/ember-fuzz-blk-XXXXXX";

static void make_image(void)
{
    int fd = mkstemp(image);
    if (fd < 0 || ftruncate(fd, IMAGE_SECTORS * VIRTIO_BLK_SECTOR) < 0)
        abort();
    close(fd);
}

static void check_image_size(void)
{
    struct stat st;
    if (stat(image, &st) < 0 || st.st_size != IMAGE_SECTORS * VIRTIO_BLK_SECTOR)
        abort(); /* a guest wrote outside its disk */
}

static void setup_queue(struct virtio_blk *blk)
{
    struct virtio_dev *vdev = &blk->vdev;
    vdev->transport = &t_ops;
    vdev->queues[0] = (struct virtq){.size = QSIZE, .desc_gpa = 0x1000, .avail_gpa = 0x2000,
                                     .used_gpa = 0x3000, .ready = true};
    vdev->driver_features = vdev->device_features;
    virtio_dev_set_status(vdev, 0x0f);
}

static void run_step(struct virtio_blk *blk, uint8_t *mem, const uint8_t *s, uint16_t *avail,
                     struct evloop *loop)
{
    struct virtq *q = &blk->vdev.queues[0];
    memcpy(mem + q->desc_gpa, s + 2, 16 * QSIZE);
    memcpy(mem + DATA, s + 2 + 16 * QSIZE, DATA_BYTES);
    le16_store(mem + q->avail_gpa + 4 + 2u * (*avail % QSIZE), s[0] % QSIZE);
    le16_store(mem + q->avail_gpa + 2, ++*avail);
    if (s[1] & 1) /* sometimes a second chain in the same notification */
        le16_store(mem + q->avail_gpa + 4 + 2u * (*avail % QSIZE), (s[1] >> 1) % QSIZE),
            le16_store(mem + q->avail_gpa + 2, ++*avail);
    pthread_mutex_lock(&blk->vdev.lock);
    blk->vdev.ops->queue_notify(&blk->vdev, 0);
    pthread_mutex_unlock(&blk->vdev.lock);
    for (int i = 0; i < 4; i++)
        evloop_run_once(loop, 0);
}

/* One device, image, io_uring and event loop for the whole process: each
 * input starts as a driver would after a reset (status 0, queue set up
 * again) once the previous input's requests completed. A device, ring and
 * loop per input cost ~1 ms each (the 540 KiB device's pages faulted in
 * afresh, the ring mapped and torn down) and capped the target at a few
 * hundred inputs per second. */
static struct virtio_blk *setup_once(struct guest_mem *gm, struct evloop *loop)
{
    static struct virtio_blk blk;
    struct blockfile bf;
    if (gm_create_anon(gm, MEM, 1ull << 32))
        abort();
    make_image();
    if (evloop_init(loop) || blockfile_open(&bf, image, false, false) ||
        virtio_blk_init(&blk, gm, &bf, "fuzz-disk", loop)) {
        fprintf(stderr, "setup: %s\n", err_msg());
        abort();
    }
    return &blk;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem gm;
    static struct evloop loop;
    static struct virtio_blk *blk;
    if (!blk)
        blk = setup_once(&gm, &loop);
    uint8_t *mem = gm.regions[0].hva;
    /* The rings and the request window start zeroed; the rest of RAM keeps
     * what earlier inputs' reads left there, as the image does (zeroing the
     * first MiB took a quarter of each input's time). */
    memset(mem, 0, RINGS_END);
    memset(mem + DATA, 0, DATA_BYTES);
    virtio_dev_set_status(&blk->vdev, 0);
    setup_queue(blk);
    uint16_t avail = 0;
    for (size_t off = 0; off + STEP <= size; off += STEP) {
        run_step(blk, mem, data + off, &avail, &loop);
        if (blk->vdev.status & VIRTIO_STATUS_NEEDS_RESET)
            break;
    }
    /* Nothing of this input may complete during the next one. */
    if (blockfile_drain(&blk->file))
        abort();
    check_image_size();
    return 0;
}
