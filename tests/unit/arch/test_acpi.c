/* ACPI tables parsed back: checksums, pointers, MADT entries, the DSDT's
 * contents, and the AML encoder's primitives. If iasl (acpica-tools) is
 * installed, the DSDT must also disassemble cleanly. */
#include "fakes.h"

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/x86_64/acpi.h"
#include "arch/x86_64/aml.h"
#include "arch/x86_64/layout.h"
#include "util/util.h"

#define AREA_GPA 0xe0000
#define AREA_SIZE 0x20000

static uint8_t area[AREA_SIZE];

static const uint8_t *table_at(uint64_t gpa)
{
    assert_true(gpa >= AREA_GPA && gpa < AREA_GPA + AREA_SIZE);
    return area + (gpa - AREA_GPA);
}

static const uint8_t *checked_table(uint64_t gpa, const char *sig)
{
    const uint8_t *t = table_at(gpa);
    assert_memory_equal(t, sig, 4);
    uint32_t len = le32_load(t + 4);
    assert_true(gpa + len <= AREA_GPA + AREA_SIZE);
    assert_int_equal(acpi_checksum(t, len), 0);
    return t;
}

/* Devices as the PC's describe themselves (a string _HID without _UID or
 * IRQ, and EISA IDs with several ports). */
static const struct acpi_device devices[] = {
    {.name = "COM1", .hid = "PNP0501", .uid = 1, .io = {{0x3f8, 8}}, .nr_io = 1, .irq = 4},
    {.name = "PS2K", .hid = "PNP0303", .uid = 0, .io = {{0x60, 1}, {0x64, 1}}, .nr_io = 2,
     .irq = 1},
    {.name = "PEVT", .hid = "QEMU0001", .hid_is_string = true, .uid = -1,
     .io = {{0x505, 1}}, .nr_io = 1, .irq = -1},
    /* A virtio-mmio device as ember (and Firecracker) describes it. */
    {.name = "VR05", .hid = "LNRO0005", .hid_is_string = true, .uid = 5,
     .mem = {{0xc0002000, 0x1000}}, .nr_mem = 1, .irq = 17, .irq_gsi = true},
};

static void build_full(unsigned cpus, uint64_t mailbox, bool without_pci)
{
    memset(area, 0xcc, sizeof(area));
    struct acpi_config cfg = {.nr_vcpus = cpus, .devices = devices,
                              .nr_devices = ARRAY_SIZE(devices), .mp_wakeup_mailbox = mailbox,
                              .without_pci = without_pci};
    assert_int_equal(acpi_build(&cfg, area, sizeof(area), AREA_GPA), 0);
}

static void build_with(unsigned cpus, uint64_t mailbox)
{
    build_full(cpus, mailbox, false);
}

static void build(unsigned cpus)
{
    build_with(cpus, 0);
}

static const uint8_t *find_in_xsdt(const char *sig)
{
    const uint8_t *xsdt = checked_table(le64_load(area + 24), "XSDT");
    uint32_t n = (le32_load(xsdt + 4) - 36) / 8;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t gpa = le64_load(xsdt + 36 + i * 8);
        if (!memcmp(table_at(gpa), sig, 4))
            return checked_table(gpa, sig);
    }
    fail_msg("%s not in the XSDT", sig);
    return NULL;
}

static void test_rsdp(void **state)
{
    (void)state;
    build(1);
    assert_memory_equal(area, "RSD PTR ", 8);
    assert_int_equal(area[15], 2);
    assert_int_equal(acpi_checksum(area, 20), 0);
    assert_int_equal(le32_load(area + 20), 36);
    assert_int_equal(acpi_checksum(area, 36), 0);
    checked_table(le64_load(area + 24), "XSDT");
}

static void test_fadt(void **state)
{
    (void)state;
    build(1);
    const uint8_t *fadt = find_in_xsdt("FACP");
    assert_int_equal(le32_load(fadt + 4), 276);
    assert_int_equal(fadt[8], 6);
    checked_table(le64_load(fadt + 140), "DSDT");
    const uint8_t *facs = table_at(le32_load(fadt + 36));
    assert_memory_equal(facs, "FACS", 4);
    assert_true(is_aligned(le32_load(fadt + 36), 64));
    assert_int_equal(le16_load(fadt + 46), IRQ_ACPI_SCI);
    assert_int_equal(le32_load(fadt + 48), 0); /* no SMI port: always ACPI */
    assert_int_equal(le32_load(fadt + 64), PORT_ACPI_PM1_CNT);
    assert_int_equal(fadt[89], 2);
    assert_int_equal(le32_load(fadt + 76), PORT_ACPI_PM_TMR);
    assert_int_equal(fadt[91], 4);
    /* Extended PM1a control block: system I/O at the same port. */
    assert_int_equal(fadt[172], 1);
    assert_true(le64_load(fadt + 176) == PORT_ACPI_PM1_CNT);
    uint16_t boot_arch = le16_load(fadt + 109);
    assert_true(boot_arch & 0x2);     /* 8042 present */
    assert_false(boot_arch & 0x8);    /* MSI allowed */
    assert_false(boot_arch & 0x20);   /* CMOS RTC present */
    assert_int_equal(fadt[108], 0x32); /* century register */
}

static void test_madt(void **state)
{
    (void)state;
    for (unsigned k = 0; k < 4; k++) {
        unsigned cpus = k & 1 ? 8 : 1;
        uint64_t mailbox = k & 2 ? LAYOUT_AP_MAILBOX : 0;
        build_with(cpus, mailbox);
        unsigned wakeups = 0;
        const uint8_t *madt = find_in_xsdt("APIC");
        uint32_t len = le32_load(madt + 4);
        assert_true(le32_load(madt + 36) == LAYOUT_LAPIC);
        assert_int_equal(le32_load(madt + 40) & 1, 1); /* PCAT_COMPAT */
        unsigned lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
        for (uint32_t off = 44; off < len;) {
            const uint8_t *e = madt + off;
            assert_true(e[1] >= 2 && off + e[1] <= len);
            switch (e[0]) {
            case 0:
                assert_int_equal(e[3], lapics); /* APIC ID = index */
                assert_int_equal(le32_load(e + 4), 1);
                lapics++;
                break;
            case 1:
                assert_true(le32_load(e + 4) == LAYOUT_IOAPIC);
                ioapics++;
                break;
            case 2:
                if (e[3] == 0)
                    assert_int_equal(le32_load(e + 4), 2); /* IRQ0 -> GSI2 */
                overrides++;
                break;
            case 4:
                assert_int_equal(e[5], 1); /* LINT1 */
                nmis++;
                break;
            case 0x10: /* multiprocessor wakeup: version 0, the mailbox */
                assert_int_equal(e[1], 16);
                assert_int_equal(le16_load(e + 2), 0);
                assert_true(le64_load(e + 8) == mailbox);
                wakeups++;
                break;
            default:
                fail_msg("unexpected MADT entry %u", e[0]);
            }
            off += e[1];
        }
        assert_int_equal(lapics, cpus);
        assert_int_equal(ioapics, 1);
        assert_int_equal(overrides, 2);
        assert_int_equal(nmis, 1);
        assert_int_equal(wakeups, mailbox ? 1 : 0);
    }
    struct acpi_config bad = {.nr_vcpus = 0};
    assert_int_equal(acpi_build(&bad, area, sizeof(area), AREA_GPA), -EINVAL);
}

static bool contains(const uint8_t *hay, size_t len, const void *needle, size_t n)
{
    return memmem(hay, len, needle, n) != NULL;
}

static void test_dsdt_contents(void **state)
{
    (void)state;
    build(2);
    const uint8_t *fadt = find_in_xsdt("FACP");
    const uint8_t *dsdt = checked_table(le64_load(fadt + 140), "DSDT");
    uint32_t len = le32_load(dsdt + 4);
    uint8_t pnp0a03[4], pnp0501[4];
    le32_store(pnp0a03, aml_eisaid_value("PNP0A03"));
    le32_store(pnp0501, aml_eisaid_value("PNP0501"));
    assert_true(contains(dsdt, len, "PCI0", 4));
    assert_true(contains(dsdt, len, pnp0a03, 4));
    assert_true(contains(dsdt, len, "COM1", 4));
    assert_true(contains(dsdt, len, pnp0501, 4));
    assert_true(contains(dsdt, len, "QEMU0001", 9));
    assert_true(contains(dsdt, len, "_S5_", 4));
    /* COM1's I/O port descriptor: 0x3f8, length 8. */
    static const uint8_t com1_io[] = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08};
    assert_true(contains(dsdt, len, com1_io, sizeof(com1_io)));
}

/* Devices on virtio-mmio only: the same DSDT without the PCI host bridge. */
static void test_dsdt_without_pci(void **state)
{
    (void)state;
    build_full(1, 0, true);
    const uint8_t *fadt = find_in_xsdt("FACP");
    const uint8_t *dsdt = checked_table(le64_load(fadt + 140), "DSDT");
    uint32_t len = le32_load(dsdt + 4);
    uint8_t pnp0a03[4];
    le32_store(pnp0a03, aml_eisaid_value("PNP0A03"));
    assert_false(contains(dsdt, len, "PCI0", 4));
    assert_false(contains(dsdt, len, "_PRT", 4));
    assert_false(contains(dsdt, len, pnp0a03, 4));
    assert_true(contains(dsdt, len, "COM1", 4));
    assert_true(contains(dsdt, len, "LNRO0005", 9));
    assert_true(contains(dsdt, len, "_S5_", 4));
}

static void test_aml_primitives(void **state)
{
    (void)state;
    uint8_t enc[4];
    assert_int_equal(aml_pkglen_encode(10, enc), 1);
    assert_int_equal(enc[0], 11);
    assert_int_equal(aml_pkglen_encode(62, enc), 1);
    assert_int_equal(aml_pkglen_encode(63, enc), 2);  /* 65 total */
    assert_int_equal(enc[0], 0x41);
    assert_int_equal(enc[1], 0x04);
    assert_int_equal(aml_pkglen_encode(4000, enc), 2);  /* 4002 = 0xfa2 */
    assert_int_equal(enc[0], 0x42);
    assert_int_equal(enc[1], 0xfa);
    assert_int_equal(aml_pkglen_encode(5000, enc), 3);  /* 5003: past 12 bits */
    assert_int_equal(enc[0], 0x8b);
    assert_int_equal(enc[1], 0x38);
    assert_int_equal(enc[2], 0x01);
    assert_int_equal(aml_pkglen_encode(70000, enc), 3); /* 70003 = 0x11173 */
    assert_int_equal(enc[0], 0x83);
    assert_int_equal(enc[1], 0x17);
    assert_int_equal(enc[2], 0x11);
    assert_int_equal(aml_eisaid_value("PNP0A03"), 0x030ad041);

    struct aml_buf b;
    aml_init(&b);
    aml_name_string(&b, "\\_SB_.PCI0");
    static const uint8_t dual[] = {'\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'};
    assert_int_equal(b.len, sizeof(dual));
    assert_memory_equal(b.data, dual, sizeof(dual));
    aml_free(&b);
    aml_init(&b);
    aml_integer(&b, 0);
    aml_integer(&b, 1);
    aml_integer(&b, 0x12);
    aml_integer(&b, 0x1234);
    aml_integer(&b, 0x12345678);
    aml_integer(&b, 0x123456789ull);
    static const uint8_t ints[] = {0x00, 0x01, 0x0a, 0x12, 0x0b, 0x34, 0x12,
                                   0x0c, 0x78, 0x56, 0x34, 0x12,
                                   0x0e, 0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0};
    assert_int_equal(b.len, sizeof(ints));
    assert_memory_equal(b.data, ints, sizeof(ints));
    aml_free(&b);

    /* A device whose body needs a two-byte PkgLength. */
    aml_init(&b);
    size_t dev = aml_device_begin(&b, "BIG_");
    for (int i = 0; i < 20; i++) {
        aml_name(&b, "_UID");
        aml_integer(&b, 0x1234);
    }
    aml_end(&b, dev);
    assert_int_equal(b.data[0], 0x5b);
    assert_int_equal(b.data[1], 0x82);
    size_t body = b.len - 2;
    assert_int_equal(b.data[2] >> 6, 1);
    assert_int_equal((b.data[2] & 0xf) | (b.data[3] << 4), body);
    assert_false(b.failed);
    aml_free(&b);
}

/* The strongest check available: ACPICA's own disassembler must accept it. */
static void test_dsdt_disassembles(void **state)
{
    (void)state;
    if (system("command -v iasl >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIPPED: iasl (acpica-tools) is not installed\n");
        skip();
    }
    build(2);
    const uint8_t *fadt = find_in_xsdt("FACP");
    const uint8_t *dsdt = table_at(le64_load(fadt + 140));
    char dir[] = "/tmp/ember-acpi-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], cmd[1024];
    snprintf(path, sizeof(path), "%s/dsdt.dat", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(dsdt, 1, le32_load(dsdt + 4), f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "cd %s && iasl -d dsdt.dat >log 2>&1 && grep -q 'PNP0A03' dsdt.dsl && "
             "grep -q 'QEMU0001' dsdt.dsl && grep -q '_S5_' dsdt.dsl && "
             "grep -q 'LNRO0005' dsdt.dsl && "
             "grep -q 'Memory32Fixed (ReadWrite,' dsdt.dsl && "
             "grep -q '0xC0002000,         // Address Base' dsdt.dsl && "
             "grep -q 'Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )' dsdt.dsl && "
             "grep -q '0x00000011,' dsdt.dsl && "
             "! grep -qi 'error' log", dir);
    int rc = system(cmd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsdp),
        cmocka_unit_test(test_fadt),
        cmocka_unit_test(test_madt),
        cmocka_unit_test(test_dsdt_contents),
        cmocka_unit_test(test_dsdt_without_pci),
        cmocka_unit_test(test_aml_primitives),
        cmocka_unit_test(test_dsdt_disassembles),
    };
    return cmocka_run_group_tests_name("acpi", tests, NULL, NULL);
}
