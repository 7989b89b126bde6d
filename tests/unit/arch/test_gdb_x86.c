/* x86-64 for GDB: the 'g' packet's layout (offsets, sizes, the x87 tag word
 * rebuilt from FXSAVE's abridged one), writes that may and may not change
 * things, the target description naming what GDB requires; and the page
 * walker against fake guest memory: 4 KiB, 2 MiB and 1 GiB pages, 5-level
 * paging, paging off, holes, tables outside RAM, non-canonical addresses. */
#include "unit.h"

#include <stdio.h>

#include "arch/x86_64/gdb_regs.h"
#include "arch/x86_64/pagewalk.h"
#include "fakes.h"

static uint64_t le_at(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void sample_state(struct gdb_x86_state *st)
{
    memset(st, 0, sizeof(*st));
    st->regs.rax = 0x1111111111111111ull;
    st->regs.rbx = 0x2222;
    st->regs.rsp = 0xffffc90000001000ull;
    st->regs.r15 = 0xf15;
    st->regs.rip = 0xffffffff81000000ull;
    st->regs.rflags = 0x246;
    st->sregs.cs.selector = 0x10;
    st->sregs.ss.selector = 0x18;
    st->sregs.gs.base = 0xffff888007a00000ull;
    st->sregs.cr0 = 0x80050033;
    st->sregs.cr3 = 0x2c00000;
    st->sregs.cr4 = 0x6f0;
    st->sregs.efer = 0xd01;
    /* x87: FCW 0x37f, TOP=7, st0 = 1.0 (physical register 7), others empty */
    st->fxsave[0] = 0x7f, st->fxsave[1] = 0x03;
    st->fxsave[3] = 7 << 3;                 /* FSW TOP=7 */
    st->fxsave[4] = 0x80;                   /* abridged tag: reg 7 valid */
    st->fxsave[32 + 7] = 0x80;              /* st0 mantissa: integer bit */
    st->fxsave[32 + 8] = 0xff, st->fxsave[32 + 9] = 0x3f; /* exponent 0x3fff */
    st->fxsave[24] = 0x80, st->fxsave[25] = 0x1f; /* MXCSR 0x1f80 */
    st->fxsave[160] = 0xaa;                 /* xmm0 byte 0 */
    st->fxsave[160 + 16 * 15 + 15] = 0xbb;  /* xmm15 byte 15 */
}

static void test_layout(void **state)
{
    (void)state;
    size_t off;
    assert_int_equal(gdb_x86_reg_slot(0, &off), 8);    /* rax */
    assert_int_equal(off, 0);
    assert_int_equal(gdb_x86_reg_slot(16, &off), 8);   /* rip */
    assert_int_equal(off, 128);
    assert_int_equal(gdb_x86_reg_slot(17, &off), 4);   /* eflags */
    assert_int_equal(off, 136);
    assert_int_equal(gdb_x86_reg_slot(18, &off), 4);   /* cs */
    assert_int_equal(off, 140);
    assert_int_equal(gdb_x86_reg_slot(24, &off), 10);  /* st0 */
    assert_int_equal(off, 164);
    assert_int_equal(gdb_x86_reg_slot(32, &off), 4);   /* fctrl */
    assert_int_equal(off, 244);
    assert_int_equal(gdb_x86_reg_slot(40, &off), 16);  /* xmm0 */
    assert_int_equal(off, 276);
    assert_int_equal(gdb_x86_reg_slot(56, &off), 4);   /* mxcsr */
    assert_int_equal(off, 532);
    assert_int_equal(gdb_x86_reg_slot(57, &off), 8);   /* fs_base */
    assert_int_equal(off, 536);
    assert_int_equal(gdb_x86_reg_slot(64, &off), 8);   /* efer */
    assert_int_equal(off, GDB_X86_REGS_SIZE - 8);
    assert_int_equal(gdb_x86_reg_slot(65, &off), 0);
    assert_int_equal(gdb_x86_reg_slot(100000, &off), 0);
}

static void test_encode(void **state)
{
    (void)state;
    struct gdb_x86_state st;
    uint8_t raw[GDB_X86_REGS_SIZE];
    sample_state(&st);
    gdb_x86_encode(&st, raw);
    assert_true(le_at(raw + 0, 8) == 0x1111111111111111ull);   /* rax */
    assert_true(le_at(raw + 8, 8) == 0x2222);                  /* rbx */
    assert_true(le_at(raw + 7 * 8, 8) == st.regs.rsp);         /* rsp is 8th */
    assert_true(le_at(raw + 15 * 8, 8) == 0xf15);
    assert_true(le_at(raw + 128, 8) == st.regs.rip);
    assert_int_equal(le_at(raw + 136, 4), 0x246);
    assert_int_equal(le_at(raw + 140, 4), 0x10);               /* cs */
    assert_int_equal(le_at(raw + 144, 4), 0x18);               /* ss */
    assert_int_equal(le_at(raw + 164 + 9, 1), 0x3f);           /* st0 exponent */
    assert_int_equal(le_at(raw + 244, 4), 0x37f);              /* fctrl */
    /* ftag: physical 7 valid (00), the others empty (11) */
    assert_int_equal(le_at(raw + 252, 4), 0x3fff);
    assert_int_equal(raw[276], 0xaa);
    assert_int_equal(raw[276 + 16 * 15 + 15], 0xbb);
    assert_int_equal(le_at(raw + 532, 4), 0x1f80);
    assert_true(le_at(raw + 544, 8) == st.sregs.gs.base);
    assert_int_equal(le_at(raw + 552, 8), 0x80050033);         /* cr0 */
    assert_int_equal(le_at(raw + 568, 8), 0x2c00000);          /* cr3 */
    assert_int_equal(le_at(raw + 592, 8), 0xd01);              /* efer */
}

static void test_decode(void **state)
{
    (void)state;
    struct gdb_x86_state st, back;
    uint8_t raw[GDB_X86_REGS_SIZE];
    sample_state(&st);
    gdb_x86_encode(&st, raw);
    back = st;
    raw[0] = 0x42;          /* rax */
    raw[128] = 0x10;        /* rip */
    raw[276 + 1] = 0x77;    /* xmm0 byte 1 */
    assert_true(gdb_x86_decode(&back, raw));
    assert_int_equal(back.regs.rax & 0xff, 0x42);
    assert_int_equal(back.regs.rip & 0xff, 0x10);
    assert_int_equal(back.fxsave[161], 0x77);
    assert_int_equal(back.fxsave[4], 0x80); /* the abridged tag survives */
    /* selectors and control registers are not writable */
    gdb_x86_encode(&st, raw);
    raw[140] = 0x33;
    assert_false(gdb_x86_decode(&back, raw));
    gdb_x86_encode(&st, raw);
    raw[568] ^= 1;
    assert_false(gdb_x86_decode(&back, raw));
}

static void test_target_xml(void **state)
{
    (void)state;
    const char *xml = gdb_x86_target_xml();
    assert_non_null(strstr(xml, "<architecture>i386:x86-64</architecture>"));
    assert_non_null(strstr(xml, "org.gnu.gdb.i386.core"));
    assert_non_null(strstr(xml, "org.gnu.gdb.i386.sse"));
    const char *names[] = {"rax", "rip", "eflags", "gs", "st7", "fop", "xmm15", "mxcsr",
                           "fs_base", "gs_base", "cr3", "efer"};
    char want[32];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(want, sizeof(want), "name=\"%s\"", names[i]);
        assert_non_null(strstr(xml, want));
    }
    /* one <reg> per register of the 'g' packet */
    unsigned regs = 0;
    for (const char *p = xml; (p = strstr(p, "<reg ")); p++)
        regs++;
    assert_int_equal(regs, GDB_X86_NR_REGS);
}

/* --- the page walker ---------------------------------------------------------------- */

#define RAM (64ull << 20)

static void pte(struct guest_mem *gm, uint64_t table, unsigned index, uint64_t value)
{
    assert_int_equal(gm_write_u64(gm, table + index * 8ull, value), 0);
}

static void test_walk_4level(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0, RAM);
    /* va 0xffffffff81234567: PML4 511, PDPT 510, PD 8, PT 0x34 */
    const uint64_t pml4 = 0x1000, pdpt = 0x2000, pd = 0x3000, pt = 0x4000;
    pte(&gm, pml4, 511, pdpt | 3);
    pte(&gm, pdpt, 510, pd | 3);
    pte(&gm, pd, 8, pt | 3);
    pte(&gm, pt, 0x34, 0x00abc000 | 3);
    /* a 2 MiB page at PD index 9 and a 1 GiB page at PDPT index 0 */
    pte(&gm, pd, 9, 0x00600000 | 0x83);
    pte(&gm, pml4, 0, 0x5000 | 3);
    pte(&gm, 0x5000, 0, 0x40000000ull | 0x83);
    struct pagewalk_ctx ctx = {.cr0 = 0x80000001, .cr3 = pml4, .cr4 = 0x20, .efer = 0x500};
    uint64_t gpa, left;
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0xffffffff81034567ull, &gpa, &left), 0);
    assert_true(gpa == 0xabc567);
    assert_int_equal(left, 0x1000 - 0x567);
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0xffffffff81234567ull, &gpa, &left), 0);
    assert_true(gpa == 0x634567);
    assert_int_equal(left, 0x200000 - 0x34567);
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0x12345678, &gpa, &left), 0);
    assert_true(gpa == 0x52345678);
    /* not present: another PT entry, another PD entry, a lower PML4 slot */
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0xffffffff81035000ull, &gpa, &left), -EFAULT);
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0xffffffff81400000ull, &gpa, &left), -EFAULT);
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0x0000700000000000ull, &gpa, &left), -EFAULT);
    /* non-canonical */
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0x0000800000000000ull, &gpa, &left), -EINVAL);
    /* a table outside RAM (a hostile guest's CR3 or entry) */
    pte(&gm, pt, 0x35, 0x00abd000 | 3);
    pte(&gm, pd, 10, 0x7ffffffff000ull | 3);
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0xffffffff81400000ull, &gpa, &left), -EFAULT);
    ctx.cr3 = 0xfffffff000ull;
    assert_int_equal(pagewalk_translate(&gm, &ctx, 0x1000, &gpa, &left), -EFAULT);
    fake_mem_free(&gm);
}

static void test_walk_modes(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0, RAM);
    uint64_t gpa, left;
    /* paging off: one to one */
    struct pagewalk_ctx off = {.cr0 = 1};
    assert_int_equal(pagewalk_translate(&gm, &off, 0x123456, &gpa, &left), 0);
    assert_true(gpa == 0x123456);
    /* 32-bit paging is not walked */
    struct pagewalk_ctx legacy = {.cr0 = 0x80000001};
    assert_int_equal(pagewalk_translate(&gm, &legacy, 0x1000, &gpa, &left), -EINVAL);
    /* 5-level: va 0x0002000000001000 uses PML5 index 2 */
    struct pagewalk_ctx la57 = {.cr0 = 0x80000001, .cr3 = 0x1000, .cr4 = 0x1020, .efer = 0x500};
    pte(&gm, 0x1000, 2, 0x2000 | 3);
    pte(&gm, 0x2000, 0, 0x3000 | 3);
    pte(&gm, 0x3000, 0, 0x4000 | 3);
    pte(&gm, 0x4000, 0, 0x5000 | 3);
    pte(&gm, 0x5000, 1, 0x9000 | 3);
    assert_int_equal(pagewalk_translate(&gm, &la57, 0x0002000000001010ull, &gpa, &left), 0);
    assert_true(gpa == 0x9010);
    /* with 4 levels the same address is not canonical */
    la57.cr4 = 0x20;
    assert_int_equal(pagewalk_translate(&gm, &la57, 0x0002000000001010ull, &gpa, &left), -EINVAL);
    fake_mem_free(&gm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_target_xml),
        cmocka_unit_test(test_walk_4level),
        cmocka_unit_test(test_walk_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
