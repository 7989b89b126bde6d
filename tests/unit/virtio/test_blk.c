/* virtio-blk: request parsing against hostile chains, then a real device on
 * a temporary image through io_uring. */
#include "vq_fake.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "virtio/blk.h"

#define RO 0
#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE

#define HDR VQF_DATA           /* request header */
#define PAYLOAD (VQF_DATA + 0x1000)
#define STATUS (VQF_DATA + 0x8000)
#define CAPACITY 2048ull        /* sectors: 1 MiB */

static struct virtq_chain chain;

static void put_header(struct vq_fake *f, uint32_t type, uint64_t sector)
{
    le32_store(f->mem + HDR, type);
    le32_store(f->mem + HDR + 4, 0);
    le64_store(f->mem + HDR + 8, sector);
}

/* header | data (readable for OUT, writable for IN) | status */
static void build_rw(struct vq_fake *f, uint32_t type, uint64_t sector, uint32_t len)
{
    put_header(f, type, sector);
    uint16_t data_flags = (type == VIRTIO_BLK_T_IN ? WR : RO) | NEXT;
    vqf_desc(f, 0, HDR, 16, NEXT, 1);
    vqf_desc(f, 1, PAYLOAD, len, data_flags, 2);
    vqf_desc(f, 2, STATUS, 1, WR, 0);
    vqf_publish(f, 0);
}

static void parse(struct vq_fake *f, bool ro, struct blk_parsed *p)
{
    assert_int_equal(virtq_pop(&f->q, &chain), 1);
    virtio_blk_parse(&f->q, &chain, CAPACITY, ro, !ro, p);
}

static void test_parse_valid(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 16);
    vqf_start(&f);
    struct blk_parsed p;
    build_rw(&f, VIRTIO_BLK_T_IN, 8, 4096);
    parse(&f, false, &p);
    assert_int_equal(p.status, -1);
    assert_true(p.type == VIRTIO_BLK_T_IN && p.sector == 8 && p.data_len == 4096);
    assert_true(p.has_status && p.status_gpa == STATUS);
    build_rw(&f, VIRTIO_BLK_T_OUT, CAPACITY - 8, 4096); /* the last 4 KiB */
    parse(&f, false, &p);
    assert_int_equal(p.status, -1);
    vqf_free(&f);
}

static void test_parse_header_split_across_buffers(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 16);
    vqf_start(&f);
    put_header(&f, VIRTIO_BLK_T_OUT, 5);
    /* 8 + 8 header bytes, data in the second buffer, status alone. */
    memcpy(f.mem + PAYLOAD, f.mem + HDR + 8, 8);
    vqf_desc(&f, 0, HDR, 8, NEXT, 1);
    vqf_desc(&f, 1, PAYLOAD, 8 + 512, NEXT, 2);
    vqf_desc(&f, 2, STATUS, 1, WR, 0);
    vqf_publish(&f, 0);
    struct blk_parsed p;
    parse(&f, false, &p);
    assert_int_equal(p.status, -1);
    assert_true(p.sector == 5 && p.data_len == 512);
    struct iovec iov[4];
    int n = virtio_blk_chain_iov(&f.q, &chain, false, 16, 512, iov, 4);
    assert_int_equal(n, 1);
    assert_ptr_equal(iov[0].iov_base, f.mem + PAYLOAD + 8);
    vqf_free(&f);
}

static void test_parse_bad_requests(void **state)
{
    (void)state;
    struct vq_fake f;
    struct blk_parsed p;

    struct {
        const char *what;
        uint32_t type;
        uint64_t sector;
        uint32_t len;
        bool ro;
        int status;
    } cases[] = {
        {"data not a multiple of 512", VIRTIO_BLK_T_IN, 0, 513, false, VIRTIO_BLK_S_IOERR},
        {"sector past the end", VIRTIO_BLK_T_IN, CAPACITY, 512, false, VIRTIO_BLK_S_IOERR},
        {"runs past the end", VIRTIO_BLK_T_OUT, CAPACITY - 1, 1024, false, VIRTIO_BLK_S_IOERR},
        {"sector overflows", VIRTIO_BLK_T_IN, UINT64_MAX, 512, false, VIRTIO_BLK_S_IOERR},
        {"write to read-only", VIRTIO_BLK_T_OUT, 0, 512, true, VIRTIO_BLK_S_IOERR},
        {"unknown type", 99, 0, 512, false, VIRTIO_BLK_S_UNSUPP},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        vqf_init(&f, 16);
        vqf_start(&f);
        build_rw(&f, cases[i].type, cases[i].sector, cases[i].len);
        parse(&f, cases[i].ro, &p);
        if (p.status != cases[i].status)
            fail_msg("%s: status %d", cases[i].what, p.status);
        assert_true(p.has_status);
        vqf_free(&f);
    }
}

static void test_parse_degenerate_chains(void **state)
{
    (void)state;
    struct vq_fake f;
    struct blk_parsed p;
    /* Short header. */
    vqf_init(&f, 16);
    vqf_start(&f);
    vqf_desc(&f, 0, HDR, 10, NEXT, 1);
    vqf_desc(&f, 1, STATUS, 1, WR, 0);
    vqf_publish(&f, 0);
    parse(&f, false, &p);
    assert_int_equal(p.status, VIRTIO_BLK_S_IOERR);
    assert_true(p.has_status);
    vqf_free(&f);
    /* No writable byte at all: nowhere for a status. */
    vqf_init(&f, 16);
    vqf_start(&f);
    put_header(&f, VIRTIO_BLK_T_OUT, 0);
    vqf_desc(&f, 0, HDR, 16, RO, 0);
    vqf_publish(&f, 0);
    parse(&f, false, &p);
    assert_false(p.has_status);
    vqf_free(&f);
    /* Zero-length read: nothing to move, completes OK at once. */
    vqf_init(&f, 16);
    vqf_start(&f);
    put_header(&f, VIRTIO_BLK_T_IN, 0);
    vqf_desc(&f, 0, HDR, 16, NEXT, 1);
    vqf_desc(&f, 1, STATUS, 1, WR, 0);
    vqf_publish(&f, 0);
    parse(&f, false, &p);
    assert_int_equal(p.status, VIRTIO_BLK_S_OK);
    vqf_free(&f);
    /* The status byte is the last byte of a longer last buffer. */
    vqf_init(&f, 16);
    vqf_start(&f);
    put_header(&f, VIRTIO_BLK_T_IN, 0);
    vqf_desc(&f, 0, HDR, 16, NEXT, 1);
    vqf_desc(&f, 1, PAYLOAD, 513, WR, 0);
    vqf_publish(&f, 0);
    parse(&f, false, &p);
    assert_int_equal(p.status, -1);
    assert_true(p.status_gpa == PAYLOAD + 512 && p.data_len == 512);
    vqf_free(&f);
}

static void lay_zero_op(struct vq_fake *f, uint32_t type, unsigned segments, uint64_t sector,
                        uint32_t sectors, uint32_t flags)
{
    put_header(f, type, 0);
    for (unsigned i = 0; i < segments; i++) {
        le64_store(f->mem + PAYLOAD + 16 * i, sector);
        le32_store(f->mem + PAYLOAD + 16 * i + 8, sectors);
        le32_store(f->mem + PAYLOAD + 16 * i + 12, flags);
    }
    vqf_desc(f, 0, HDR, 16, NEXT, 1);
    vqf_desc(f, 1, PAYLOAD, 16 * segments, NEXT, 2);
    vqf_desc(f, 2, STATUS, 1, WR, 0);
}

static void build_zero_op(struct vq_fake *f, uint32_t type, unsigned segments, uint64_t sector,
                          uint32_t sectors, uint32_t flags)
{
    lay_zero_op(f, type, segments, sector, sectors, flags);
    vqf_publish(f, 0);
}

static void test_parse_discard_and_zeroes(void **state)
{
    (void)state;
    struct {
        const char *what;
        uint32_t type;
        unsigned segments;
        uint64_t sector;
        uint32_t sectors, flags;
        bool ro;
        int status;
    } cases[] = {
        {"discard", VIRTIO_BLK_T_DISCARD, 1, 8, 16, 0, false, -1},
        {"write zeroes with unmap", VIRTIO_BLK_T_WRITE_ZEROES, 1, 8, 16, 1, false, -1},
        {"two segments", VIRTIO_BLK_T_DISCARD, 2, 8, 16, 0, false, VIRTIO_BLK_S_IOERR},
        {"discard with flags", VIRTIO_BLK_T_DISCARD, 1, 8, 16, 1, false, VIRTIO_BLK_S_UNSUPP},
        {"unknown zeroes flag", VIRTIO_BLK_T_WRITE_ZEROES, 1, 8, 16, 2, false,
         VIRTIO_BLK_S_UNSUPP},
        {"zero sectors", VIRTIO_BLK_T_DISCARD, 1, 8, 0, 0, false, VIRTIO_BLK_S_IOERR},
        {"past the end", VIRTIO_BLK_T_DISCARD, 1, CAPACITY - 4, 8, 0, false,
         VIRTIO_BLK_S_IOERR},
        {"read-only", VIRTIO_BLK_T_DISCARD, 1, 8, 16, 0, true, VIRTIO_BLK_S_IOERR},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct vq_fake f;
        struct blk_parsed p;
        vqf_init(&f, 16);
        vqf_start(&f);
        build_zero_op(&f, cases[i].type, cases[i].segments, cases[i].sector, cases[i].sectors,
                      cases[i].flags);
        parse(&f, cases[i].ro, &p);
        if (p.status != cases[i].status)
            fail_msg("%s: status %d", cases[i].what, p.status);
        if (p.status < 0)
            assert_true(p.sector == cases[i].sector && p.data_len == cases[i].sectors * 512ull);
        vqf_free(&f);
    }
}

/* --- the device on a real image --------------------------------------------- */

struct fake_transport {
    unsigned queue_irqs, config_irqs;
};

static void ft_queue(struct virtio_dev *vdev, unsigned q)
{
    (void)q;
    ((struct fake_transport *)vdev->transport_ctx)->queue_irqs++;
}

static void ft_config(struct virtio_dev *vdev)
{
    ((struct fake_transport *)vdev->transport_ctx)->config_irqs++;
}

static const struct virtio_transport_ops ft_ops = {
    .notify_queue = ft_queue, .notify_config = ft_config};

struct disk_fixture {
    struct vq_fake f;
    struct virtio_blk *blk;
    struct evloop loop;
    struct fake_transport ft;
    char path[64];
};

static void disk_up(struct disk_fixture *d, bool ro)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "/tmp/ember-blk-XXXXXX");
    int fd = mkstemp(d->path);
    assert_true(fd >= 0);
    uint8_t sector[512];
    for (unsigned s = 0; s < CAPACITY; s++) {
        memset(sector, (int)(s & 0xff), sizeof(sector));
        assert_int_equal(write(fd, sector, sizeof(sector)), sizeof(sector));
    }
    close(fd);
    assert_int_equal(evloop_init(&d->loop), 0);
    struct blockfile bf;
    assert_int_equal(blockfile_open(&bf, d->path, ro, false), 0);
    vqf_init(&d->f, 16);
    d->blk = calloc(1, sizeof(*d->blk));
    assert_int_equal(virtio_blk_init(d->blk, &d->f.gm, &bf, "ember-test-disk", &d->loop), 0);
    struct virtio_dev *vdev = &d->blk->vdev;
    vdev->transport = &ft_ops;
    vdev->transport_ctx = &d->ft;
    vdev->queues[0] = d->f.q;
    vdev->queues[0].ready = true;
    /* Without EVENT_IDX every completion interrupts, which the test counts. */
    vdev->driver_features = vdev->device_features & ~(1ull << VIRTIO_F_EVENT_IDX);
    virtio_dev_set_status(vdev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    assert_true(virtio_dev_running(vdev));
}

static void disk_down(struct disk_fixture *d)
{
    virtio_blk_destroy(d->blk);
    free(d->blk);
    evloop_destroy(&d->loop);
    vqf_free(&d->f);
    unlink(d->path);
}

/* Publish, notify, and run the loop until 'n' more requests completed. */
static void disk_run(struct disk_fixture *d, uint16_t head, uint16_t expect_used)
{
    struct virtio_dev *vdev = &d->blk->vdev;
    d->f.q = vdev->queues[0];
    vqf_publish(&d->f, head);
    pthread_mutex_lock(&vdev->lock);
    vdev->ops->queue_notify(vdev, 0);
    pthread_mutex_unlock(&vdev->lock);
    for (int i = 0; i < 100 && vqf_used_idx(&d->f) != expect_used; i++)
        evloop_run_once(&d->loop, 100);
    assert_int_equal(vqf_used_idx(&d->f), expect_used);
}

static void disk_request(struct disk_fixture *d, uint32_t type, uint64_t sector, uint32_t len,
                         uint16_t expect_used)
{
    put_header(&d->f, type, sector);
    uint16_t data_flags = (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID ? WR : RO);
    vqf_desc(&d->f, 0, HDR, 16, NEXT, len ? 1 : 2);
    vqf_desc(&d->f, 1, PAYLOAD, len, data_flags | NEXT, 2);
    vqf_desc(&d->f, 2, STATUS, 1, WR, 0);
    d->f.mem[STATUS] = 0xee;
    disk_run(d, 0, expect_used);
}

static void file_sector(const char *path, unsigned s, uint8_t *out)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, out, 512, (off_t)s * 512), 512);
    close(fd);
}

static void test_device_read_write_flush_id(void **state)
{
    (void)state;
    struct disk_fixture d;
    disk_up(&d, false);
    disk_request(&d, VIRTIO_BLK_T_IN, 3, 1024, 1);
    assert_int_equal(d.f.mem[STATUS], VIRTIO_BLK_S_OK);
    assert_int_equal(d.f.mem[PAYLOAD], 3);
    assert_int_equal(d.f.mem[PAYLOAD + 1023], 4);
    uint32_t id, len;
    vqf_used_elem(&d.f, 0, &id, &len);
    assert_int_equal(len, 1025); /* data + status */

    memset(d.f.mem + PAYLOAD, 0xab, 512);
    disk_request(&d, VIRTIO_BLK_T_OUT, 100, 512, 2);
    assert_int_equal(d.f.mem[STATUS], VIRTIO_BLK_S_OK);
    disk_request(&d, VIRTIO_BLK_T_FLUSH, 0, 0, 3);
    assert_int_equal(d.f.mem[STATUS], VIRTIO_BLK_S_OK);
    uint8_t sector[512];
    file_sector(d.path, 100, sector);
    assert_int_equal(sector[0], 0xab);
    assert_int_equal(sector[511], 0xab);

    disk_request(&d, VIRTIO_BLK_T_GET_ID, 0, 20, 4);
    assert_memory_equal(d.f.mem + PAYLOAD, "ember-test-disk", 15);
    assert_true(d.blk->stats.reads == 1 && d.blk->stats.writes == 1);
    assert_true(d.ft.queue_irqs >= 4);
    disk_down(&d);
}

static void test_device_rejects_past_end_and_read_only(void **state)
{
    (void)state;
    struct disk_fixture d;
    disk_up(&d, true);
    memset(d.f.mem + PAYLOAD, 0x5a, 512);
    disk_request(&d, VIRTIO_BLK_T_OUT, 0, 512, 1);
    assert_int_equal(d.f.mem[STATUS], VIRTIO_BLK_S_IOERR);
    disk_request(&d, VIRTIO_BLK_T_IN, CAPACITY, 512, 2);
    assert_int_equal(d.f.mem[STATUS], VIRTIO_BLK_S_IOERR);
    uint8_t sector[512];
    file_sector(d.path, 0, sector);
    assert_int_equal(sector[0], 0); /* untouched */
    assert_false(d.blk->vdev.device_features & (1ull << VIRTIO_BLK_F_DISCARD));
    assert_true(d.blk->vdev.device_features & (1ull << VIRTIO_BLK_F_RO));
    disk_down(&d);
}

static void test_device_discard_and_zeroes(void **state)
{
    (void)state;
    struct disk_fixture d;
    disk_up(&d, false);
    if (!d.blk->file.can_punch) {
        fprintf(stderr, "SKIPPED: /tmp cannot punch holes\n");
        disk_down(&d);
        skip();
    }
    lay_zero_op(&d.f, VIRTIO_BLK_T_DISCARD, 1, 16, 8, 0);
    d.f.mem[STATUS] = 0xee;
    disk_run(&d, 0, 1);
    assert_int_equal(d.f.mem[STATUS], VIRTIO_BLK_S_OK);
    lay_zero_op(&d.f, VIRTIO_BLK_T_WRITE_ZEROES, 1, 40, 8, 0);
    disk_run(&d, 0, 2);
    assert_int_equal(d.f.mem[STATUS], VIRTIO_BLK_S_OK);
    uint8_t sector[512];
    file_sector(d.path, 16, sector);
    assert_int_equal(sector[0] | sector[511], 0);
    file_sector(d.path, 44, sector);
    assert_int_equal(sector[100], 0);
    file_sector(d.path, 48, sector);
    assert_int_equal(sector[0], 48); /* just past the range: untouched */
    disk_down(&d);
}

static void test_device_hostile_ring_needs_reset(void **state)
{
    (void)state;
    struct disk_fixture d;
    disk_up(&d, false);
    vqf_desc(&d.f, 0, HDR, 16, NEXT, 0); /* loops on itself */
    disk_run(&d, 0, 0);
    assert_true(d.blk->vdev.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(d.ft.config_irqs, 1);
    /* Further notifications do nothing; a reset clears it. */
    virtio_dev_set_status(&d.blk->vdev, 0);
    assert_int_equal(d.blk->vdev.status, 0);
    disk_down(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_header_split_across_buffers),
        cmocka_unit_test(test_parse_bad_requests),
        cmocka_unit_test(test_parse_degenerate_chains),
        cmocka_unit_test(test_parse_discard_and_zeroes),
        cmocka_unit_test(test_device_read_write_flush_id),
        cmocka_unit_test(test_device_rejects_past_end_and_read_only),
        cmocka_unit_test(test_device_discard_and_zeroes),
        cmocka_unit_test(test_device_hostile_ring_needs_reset),
    };
    return cmocka_run_group_tests_name("blk", tests, NULL, NULL);
}
