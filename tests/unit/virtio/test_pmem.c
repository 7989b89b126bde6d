/* virtio-pmem against a fake ring: the config space says where the file is,
 * FLUSH answers 0 after an fsync, and hostile requests (unknown type, too
 * short, no room for the answer) neither crash nor touch the file. */
#include "unit.h"

#include <stdio.h>
#include <unistd.h>

#include "vq_fake.h"
#include "virtio/pmem.h"

#define RO 0
#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE
#define REQ 0x20000ull
#define RESP 0x21000ull

static void stub_notify(struct virtio_dev *vdev, unsigned q)
{
    (void)vdev, (void)q;
}

static void stub_config(struct virtio_dev *vdev)
{
    (void)vdev;
}

static const struct virtio_transport_ops stub_transport = {.notify_queue = stub_notify,
                                                             .notify_config = stub_config};

struct fixture {
    struct vq_fake f;
    struct virtio_pmem pm;
    FILE *file;
};

static void setup(struct fixture *x)
{
    vqf_init(&x->f, 16);
    vqf_start(&x->f);
    x->file = tmpfile();
    assert_non_null(x->file);
    struct pmem_backing b = {.fd = fileno(x->file), .file_size = 4096,
                             .gpa = 0x100000000ull, .size = 2u << 20};
    virtio_pmem_init(&x->pm, &x->f.gm, &b, false, "pm0");
    x->pm.vdev.transport = &stub_transport;
    x->pm.vdev.queues[0] = x->f.q;
    x->pm.vdev.status = VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
}

static void teardown(struct fixture *x)
{
    virtio_dev_destroy(&x->pm.vdev);
    fclose(x->file);
    vqf_free(&x->f);
}

/* One request of 'req_len' bytes of type 'type', an answer buffer of
 * 'resp_len'; returns the answer (or 0xffffffff if none was written). */
static uint32_t request(struct fixture *x, uint32_t type, uint32_t req_len, uint32_t resp_len)
{
    le32_store(x->f.mem + REQ, type);
    le32_store(x->f.mem + RESP, 0xffffffffu);
    uint16_t head = (uint16_t)(x->f.avail_idx % 16 * 2 % 16);
    vqf_desc(&x->f, head, REQ, req_len, NEXT, (uint16_t)(head + 1));
    vqf_desc(&x->f, (uint16_t)(head + 1), RESP, resp_len, WR, 0);
    vqf_publish(&x->f, head);
    x->pm.vdev.ops->queue_notify(&x->pm.vdev, 0);
    return le32_load(x->f.mem + RESP);
}

static void test_config(void **state)
{
    (void)state;
    struct fixture x;
    setup(&x);
    uint8_t cfg[16];
    x.pm.vdev.ops->config_read(&x.pm.vdev, 0, cfg, sizeof(cfg));
    assert_true(le64_load(cfg) == 0x100000000ull);
    assert_true(le64_load(cfg + 8) == 2u << 20);
    uint8_t tail[8] = {0};
    x.pm.vdev.ops->config_read(&x.pm.vdev, 12, tail, sizeof(tail)); /* past the end: clipped */
    assert_int_equal(le32_load(tail), 0);
    teardown(&x);
}

static void test_flush_and_hostile_requests(void **state)
{
    (void)state;
    struct fixture x;
    setup(&x);
    assert_int_equal(request(&x, 0, 4, 4), 0);          /* FLUSH */
    assert_int_equal(x.pm.flushes, 1);
    assert_int_equal(request(&x, 7, 4, 4), 1);          /* unknown type: EIO */
    assert_int_equal(request(&x, 0, 2, 4), 1);          /* request too short */
    assert_true(request(&x, 0, 4, 2) == 0xffffffffu);   /* no room to answer */
    assert_int_equal(vqf_used_idx(&x.f), 4);            /* every chain given back */
    assert_int_equal(x.pm.fails, 3);
    assert_false(x.pm.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
    teardown(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_flush_and_hostile_requests),
    };
    return cmocka_run_group_tests_name("pmem", tests, NULL, NULL);
}
