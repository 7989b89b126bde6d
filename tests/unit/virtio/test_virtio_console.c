/* virtio-console transmit against a hostile driver and a slow host: one
 * notification sends a bounded amount and kicks the queue to continue after
 * the loop's other work (a ring naming the same huge chain again and again
 * cannot hold the event loop), a full host leaves the chain in the ring until
 * it calls back (nothing blocks, nothing spins), and the bytes arrive whole
 * and in order. */
#include "vq_fake.h"

#include "virtio/console.h"
#include "virtio/attach.h"

#define TX 1
#define QSIZE 16

/* The board is not part of this test. */
int virtio_attach(struct board *b, struct virtio_dev *vdev, const char *metrics)
{
    (void)b, (void)vdev, (void)metrics;
    return -ENOSYS;
}

struct host {
    uint64_t taken;       /* bytes the host took */
    uint64_t room;        /* it takes this many more before it is full */
    uint8_t head[4096];   /* the first bytes it took */
    void (*waiter)(void *arg);
    void *waiter_arg;
    unsigned waits;
};

/* A guest on another vCPU that puts each chain back as soon as it is taken. */
static struct vq_fake *republish;

static size_t host_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct host *h = ctx;
    if (republish)
        vqf_publish(republish, (uint16_t)(republish->avail_idx % QSIZE));
    size_t n = (size_t)MIN((uint64_t)len, h->room);
    for (size_t i = 0; i < n; i++)
        if (h->taken + i < sizeof(h->head))
            h->head[h->taken + i] = buf[i];
    h->taken += n;
    h->room -= n;
    return n;
}

static void host_wait(void *ctx, void (*fn)(void *arg), void *arg)
{
    struct host *h = ctx;
    h->waiter = fn;
    h->waiter_arg = arg;
    h->waits++;
}

static const struct chardev_host_ops host_ops = {.write = host_write, .wait_writable = host_wait};

static unsigned kicks, irqs;
static void t_queue(struct virtio_dev *v, unsigned q) { (void)v; (void)q; irqs++; }
static void t_config(struct virtio_dev *v) { (void)v; }
static void t_kick(struct virtio_dev *v, unsigned q) { (void)v; assert_int_equal(q, TX); kicks++; }
static const struct virtio_transport_ops t_ops = {t_queue, t_config, t_kick};

struct fixture {
    struct vq_fake f; /* its memory; the console's TX queue uses its layout */
    struct virtio_console vc;
    struct host host;
};

static struct fixture *setup(void)
{
    struct fixture *x = calloc(1, sizeof(*x));
    vqf_init(&x->f, QSIZE);
    x->host.room = UINT64_MAX;
    const struct chardev_host host = {&host_ops, &x->host};
    virtio_console_init(&x->vc, &x->f.gm, &host);
    struct virtio_dev *vdev = &x->vc.vdev;
    vdev->transport = &t_ops;
    /* RX somewhere harmless, TX on the fake's rings. */
    vdev->queues[0] = (struct virtq){.size = QSIZE, .desc_gpa = 0x8000, .avail_gpa = 0x9000,
                                     .used_gpa = 0xa000, .ready = true};
    struct virtq *q = &vdev->queues[TX];
    q->size = QSIZE;
    q->desc_gpa = VQF_DESC;
    q->avail_gpa = VQF_AVAIL;
    q->used_gpa = VQF_USED;
    q->ready = true;
    vdev->driver_features = (1ull << VIRTIO_F_VERSION_1);
    virtio_dev_set_status(vdev, 0x0f);
    assert_true(virtio_dev_queue_running(vdev, TX));
    kicks = irqs = 0;
    return x;
}

static void teardown(struct fixture *x)
{
    vqf_free(&x->f);
    free(x);
}

static void notify(struct fixture *x)
{
    pthread_mutex_lock(&x->vc.vdev.lock);
    x->vc.vdev.ops->queue_notify(&x->vc.vdev, TX);
    pthread_mutex_unlock(&x->vc.vdev.lock);
}

/* The attack: every entry of the available ring names chain 0, a
 * chain of 256 descriptors each covering the same 960 KiB — 240 MiB per
 * entry, 3.75 GiB for one 2-byte notify. Each notification (or kick) sends
 * at most the budget; the queue is kicked to go on later. */
static void test_tx_budget_per_notify(void **state)
{
    (void)state;
    struct fixture *x = setup();
    const uint32_t len = VQF_MEM_SIZE - VQF_DATA;
    /* An indirect table of 256 entries, all the same buffer. */
    uint8_t *table = x->f.mem + VQF_DATA;
    for (unsigned i = 0; i < 256; i++)
        vqf_put_desc(table, (uint16_t)i, VQF_DATA, len, i < 255 ? VIRTQ_DESC_F_NEXT : 0,
                     (uint16_t)(i + 1));
    x->vc.vdev.queues[TX].indirect = true;
    vqf_desc(&x->f, 0, VQF_DATA, 256 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    for (int i = 0; i < QSIZE; i++)
        vqf_publish(&x->f, 0);
    notify(x);
    assert_int_equal(x->host.taken, VIRTIO_CONSOLE_TX_BUDGET);
    assert_int_equal(kicks, 1);
    assert_int_equal(vqf_used_idx(&x->f), 0); /* the chain is not done */
    /* Each kick (the loop running the queue again) sends one more budget. */
    for (int round = 2; round <= 5; round++) {
        notify(x);
        assert_int_equal(x->host.taken, (uint64_t)round * VIRTIO_CONSOLE_TX_BUDGET);
        assert_int_equal(kicks, round);
    }
    assert_int_equal(x->vc.bytes_out, x->host.taken);
    teardown(x);
}

/* Many small chains: at most VIRTIO_DRAIN_BUDGET chains per notification
 * even while the guest keeps adding them (here: re-published as used). */
static void test_tx_chain_budget(void **state)
{
    (void)state;
    struct fixture *x = setup();
    memcpy(x->f.mem + VQF_DATA, "ab", 2);
    for (uint16_t i = 0; i < QSIZE; i++) {
        vqf_desc(&x->f, i, VQF_DATA, 2, 0, 0);
        vqf_publish(&x->f, i);
    }
    notify(x);
    /* All 16 were used (16 < 2 x 16): no kick needed. */
    assert_int_equal(vqf_used_idx(&x->f), QSIZE);
    assert_int_equal(kicks, 0);
    assert_int_equal(x->host.taken, 2 * QSIZE);
    /* A guest that adds a chain for each one used: the notification stops
     * after the budget, kicks, and the next round takes another budget. */
    republish = &x->f;
    vqf_publish(&x->f, 0);
    notify(x);
    assert_int_equal(vqf_used_idx(&x->f), QSIZE + VIRTIO_DRAIN_BUDGET(QSIZE));
    assert_int_equal(kicks, 1);
    notify(x);
    assert_int_equal(vqf_used_idx(&x->f), QSIZE + 2 * VIRTIO_DRAIN_BUDGET(QSIZE));
    assert_int_equal(kicks, 2);
    republish = NULL;
    teardown(x);
}

/* A full host: the chain stays in the ring (no used entry), the console
 * asks once to be called back, and nothing more is attempted until then;
 * room comes in pieces and the bytes arrive whole, in order, exactly once. */
static void test_tx_backpressure(void **state)
{
    (void)state;
    struct fixture *x = setup();
    uint8_t *data = x->f.mem + VQF_DATA;
    for (int i = 0; i < 3000; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    vqf_desc(&x->f, 0, VQF_DATA, 1000, VIRTQ_DESC_F_NEXT, 1);
    vqf_desc(&x->f, 1, VQF_DATA + 1000, 2000, 0, 0);
    vqf_publish(&x->f, 0);
    vqf_desc(&x->f, 2, VQF_DATA, 10, 0, 0);
    vqf_publish(&x->f, 2);
    x->host.room = 700;
    notify(x);
    assert_int_equal(x->host.taken, 700);
    assert_int_equal(vqf_used_idx(&x->f), 0);
    assert_int_equal(x->host.waits, 1);
    assert_non_null(x->host.waiter);
    /* A guest notify meanwhile changes nothing and does not ask again. */
    notify(x);
    assert_int_equal(x->host.taken, 700);
    assert_int_equal(x->host.waits, 1);
    /* Room for 1500 more: still not the whole chain. */
    x->host.room = 1500;
    void (*fn)(void *) = x->host.waiter;
    x->host.waiter = NULL;
    fn(x->host.waiter_arg);
    assert_int_equal(x->host.taken, 2200);
    assert_int_equal(vqf_used_idx(&x->f), 0);
    assert_int_equal(x->host.waits, 2);
    /* Room for everything: the first chain completes, then the second. */
    x->host.room = UINT64_MAX;
    fn = x->host.waiter;
    x->host.waiter = NULL;
    fn(x->host.waiter_arg);
    assert_int_equal(x->host.taken, 3010);
    assert_int_equal(vqf_used_idx(&x->f), 2);
    assert_memory_equal(x->host.head, data, 3000);
    assert_memory_equal(x->host.head + 3000, data, 10);
    assert_true(irqs > 0);
    teardown(x);
}

/* A reset while the host is full: the call-back that comes later finds the
 * queue stopped and does nothing; after the driver sets up again a new chain
 * starts from its first byte. */
static void test_tx_reset_while_waiting(void **state)
{
    (void)state;
    struct fixture *x = setup();
    memcpy(x->f.mem + VQF_DATA, "0123456789", 10);
    vqf_desc(&x->f, 0, VQF_DATA, 10, 0, 0);
    vqf_publish(&x->f, 0);
    x->host.room = 4;
    notify(x);
    assert_int_equal(x->host.taken, 4);
    pthread_mutex_lock(&x->vc.vdev.lock);
    virtio_dev_set_status(&x->vc.vdev, 0);
    pthread_mutex_unlock(&x->vc.vdev.lock);
    x->host.room = UINT64_MAX;
    void (*fn)(void *) = x->host.waiter;
    fn(x->host.waiter_arg);
    assert_int_equal(x->host.taken, 4);
    assert_int_equal(x->vc.tx_off, 0);
    teardown(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tx_budget_per_notify),
        cmocka_unit_test(test_tx_chain_budget),
        cmocka_unit_test(test_tx_backpressure),
        cmocka_unit_test(test_tx_reset_while_waiting),
    };
    return cmocka_run_group_tests_name("virtio_console", tests, NULL, NULL);
}
