/* The kernel's and initrd's copy on a thread of its own: everything lands
 * (segments zero-filled to their memory size), a vCPU's wait returns only
 * once the copy is finished and announced, and a destination outside guest
 * memory is refused before anything starts. */
#include "unit.h"

#include <pthread.h>

#include "fakes.h"
#include "vmm/image_copy.h"

#define MEM_SIZE (8u << 20)

struct written_log {
    uint64_t gpa[4], len[4];
    unsigned n;
};

static void note_written(void *ctx, uint64_t gpa, uint64_t len)
{
    struct written_log *w = ctx;
    if (w->n < 4) {
        w->gpa[w->n] = gpa;
        w->len[w->n] = len;
    }
    w->n++;
}

struct fixture {
    struct guest_mem gm;
    struct boot_config cfg;
    struct boot_layout layout;
    uint8_t kernel[3000], initrd[5000];
    struct written_log written;
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    fake_mem_init(&f->gm, 0, MEM_SIZE);
    memset(f->gm.regions[0].hva, 0xee, MEM_SIZE); /* a tail left unzeroed would show */
    f->gm.write_hook = note_written;
    f->gm.write_hook_ctx = &f->written;
    memset(f->kernel, 0x11, sizeof(f->kernel));
    memset(f->initrd, 0x22, sizeof(f->initrd));
    f->cfg.kernel = (struct boot_file){"vmlinux", f->kernel, sizeof(f->kernel)};
    f->cfg.initrd = (struct boot_file){"initrd", f->initrd, sizeof(f->initrd)};
    f->layout.kernel.nr_segs = 1;
    f->layout.kernel.segs[0] = (struct kernel_segment){
        .gpa = 1u << 20, .src = f->kernel, .file_size = sizeof(f->kernel), .mem_size = 8192};
    f->layout.initrd_gpa = 6u << 20;
    f->layout.initrd_size = sizeof(f->initrd);
}

struct waiter {
    struct image_copy *copy;
    const uint8_t *mem;
    bool saw_everything;
};

static void *wait_like_a_vcpu(void *arg)
{
    struct waiter *w = arg;
    image_copy_wait(w->copy);
    w->saw_everything = w->mem[(6u << 20) + 4999] == 0x22 && w->mem[(1u << 20) + 8191] == 0;
    return NULL;
}

static void test_copies_then_releases_waiters(void **state)
{
    (void)state;
    static struct fixture f;
    fixture_init(&f);
    struct image_copy copy;
    image_copy_init(&copy);
    assert_int_equal(image_copy_start(&copy, &f.cfg, &f.layout, &f.gm), 0);
    struct waiter w = {&copy, f.gm.regions[0].hva, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_like_a_vcpu, &w), 0);
    image_copy_finish(&copy, &f.gm);
    image_copy_open(&copy);
    pthread_join(t, NULL);
    assert_true(w.saw_everything);

    const uint8_t *mem = f.gm.regions[0].hva;
    assert_memory_equal(mem + (1u << 20), f.kernel, sizeof(f.kernel));
    for (size_t i = sizeof(f.kernel); i < 8192; i++)
        assert_int_equal(mem[(1u << 20) + i], 0);
    assert_int_equal(mem[(1u << 20) + 8192], 0xee); /* nothing past the segment */
    assert_memory_equal(mem + (6u << 20), f.initrd, sizeof(f.initrd));
    assert_int_equal(mem[(6u << 20) + sizeof(f.initrd)], 0xee);
    /* Announced once each, after the copy: the segment's memory size. */
    assert_int_equal(f.written.n, 2);
    assert_true(f.written.gpa[0] == (1u << 20) && f.written.len[0] == 8192);
    assert_true(f.written.gpa[1] == (6u << 20) && f.written.len[1] == sizeof(f.initrd));
    image_copy_finish(&copy, &f.gm); /* a second finish does nothing */
    assert_int_equal(f.written.n, 2);
    image_copy_wait(&copy); /* open: at once */
    image_copy_destroy(&copy);
    fake_mem_free(&f.gm);
}

static void test_refuses_outside_memory(void **state)
{
    (void)state;
    static struct fixture f;
    fixture_init(&f);
    struct image_copy copy;
    image_copy_init(&copy);
    f.layout.kernel.segs[0].gpa = MEM_SIZE - 4096; /* 8 KiB from 4 KiB below the end */
    assert_int_equal(image_copy_start(&copy, &f.cfg, &f.layout, &f.gm), -E2BIG);
    f.layout.kernel.segs[0].gpa = 1u << 20;
    f.layout.initrd_gpa = UINT64_MAX - 100; /* wraps */
    assert_int_equal(image_copy_start(&copy, &f.cfg, &f.layout, &f.gm), -E2BIG);
    /* Nothing started: a vCPU does not wait, finishing announces nothing,
     * and memory is untouched. */
    image_copy_wait(&copy);
    image_copy_finish(&copy, &f.gm);
    assert_int_equal(f.written.n, 0);
    assert_int_equal(((uint8_t *)f.gm.regions[0].hva)[1u << 20], 0xee);
    image_copy_destroy(&copy);
    fake_mem_free(&f.gm);
}

static void test_nothing_to_wait_for(void **state)
{
    (void)state;
    struct image_copy copy;
    image_copy_init(&copy);
    image_copy_wait(&copy); /* a restore: returns at once */
    image_copy_destroy(&copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_then_releases_waiters),
        cmocka_unit_test(test_refuses_outside_memory),
        cmocka_unit_test(test_nothing_to_wait_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
