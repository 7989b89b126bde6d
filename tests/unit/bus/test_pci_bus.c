/* The port/MMIO bus and PCI configuration mechanism #1 with the host bridge. */
#include "fakes.h"

#include "bus/bus.h"
#include "bus/pci/pci.h"
#include "util/util.h"

struct recorder {
    uint64_t offset;
    unsigned len;
    uint8_t last[8];
    int reads, writes;
};

static void rec_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct recorder *r = dev;
    r->offset = offset;
    r->len = len;
    r->reads++;
    memset(data, 0x5a, len);
}

static void rec_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct recorder *r = dev;
    r->offset = offset;
    r->len = len;
    r->writes++;
    memcpy(r->last, data, len);
}

static const struct bus_ops rec_ops = {.read = rec_read, .write = rec_write};

static void test_bus_dispatch_and_overlap(void **state)
{
    (void)state;
    struct bus bus;
    bus_init(&bus, "test");
    struct recorder a = {0}, b = {0};
    assert_int_equal(bus_register(&bus, 0x100, 8, &rec_ops, &a, "a"), 0);
    assert_int_equal(bus_register(&bus, 0x200, 4, &rec_ops, &b, "b"), 0);
    assert_int_equal(bus_register(&bus, 0x104, 8, &rec_ops, &b, "overlap"), -EEXIST);
    assert_int_equal(bus_register(&bus, 0x0f8, 9, &rec_ops, &b, "overlap"), -EEXIST);
    assert_int_equal(bus_register(&bus, 0x1fc, 4, &rec_ops, &b, "adjacent"), 0);
    assert_int_equal(bus_register(&bus, ~0ull - 1, 4, &rec_ops, &b, "wraps"), -EINVAL);
    assert_int_equal(bus_register(&bus, 0x300, 0, &rec_ops, &b, "empty"), -EINVAL);

    uint32_t v = 0;
    assert_true(bus_read(&bus, 0x104, &v, 4));
    assert_int_equal(a.offset, 4);               /* devices see offsets */
    assert_int_equal(v, 0x5a5a5a5a);
    uint16_t w = 0xbeef;
    assert_true(bus_write(&bus, 0x202, &w, 2));
    assert_int_equal(b.offset, 2);
    /* Unclaimed: reads all ones, nothing dispatched. */
    assert_false(bus_read(&bus, 0x180, &v, 4));
    assert_int_equal(v, 0xffffffff);
    /* An access running past its range's end is not dispatched. */
    int reads = a.reads;
    assert_false(bus_read(&bus, 0x106, &v, 4));
    assert_int_equal(a.reads, reads);
    assert_int_equal(bus_unregister(&bus, 0x100, &a), 0);
    assert_false(bus_read(&bus, 0x100, &v, 1));
    assert_int_equal(bus_unregister(&bus, 0x100, &a), -ENOENT);
    bus_destroy(&bus);
}

struct pci_fixture {
    struct pci_bus pci;
    struct pci_device bridge;
};

static uint32_t conf1_read(struct pci_bus *pci, unsigned slot, unsigned reg, unsigned len)
{
    uint32_t addr = 0x80000000u | (slot << 11) | (reg & 0xfc), v = 0;
    pci_conf1_bus_ops.write(pci, 0, &addr, 4);
    pci_conf1_bus_ops.read(pci, 4 + (reg & 3), &v, len);
    return v;
}

static void test_conf1_host_bridge(void **state)
{
    (void)state;
    struct pci_fixture f;
    pci_bus_init(&f.pci);
    pci_host_bridge_init(&f.bridge);
    assert_int_equal(pci_bus_add(&f.pci, &f.bridge, 0), 0);
    assert_int_equal(conf1_read(&f.pci, 0, 0, 4), 0x00081b36);
    assert_int_equal(conf1_read(&f.pci, 0, 0x0a, 2), 0x0600);   /* host bridge */
    assert_int_equal(conf1_read(&f.pci, 0, 0x0e, 1), 0x00);     /* header type 0 */
    assert_int_equal(conf1_read(&f.pci, 1, 0, 4), 0xffffffff);  /* empty slot */
    assert_int_equal(conf1_read(&f.pci, 0, 0x02, 2), 0x0008);

    /* Linux's type-1 check: a dword written to 0xcf8 reads back. */
    uint32_t addr = 0x80000000, back = 0;
    pci_conf1_bus_ops.write(&f.pci, 0, &addr, 4);
    pci_conf1_bus_ops.read(&f.pci, 0, &back, 4);
    assert_int_equal(back, 0x80000000);
    /* Byte writes there belong to other ports: the latch is unchanged. */
    uint8_t one = 1;
    pci_conf1_bus_ops.write(&f.pci, 3, &one, 1);
    pci_conf1_bus_ops.read(&f.pci, 0, &back, 4);
    assert_int_equal(back, 0x80000000);

    /* Enable bit clear, other buses, other functions: nothing there. */
    addr = 0x00000000;
    pci_conf1_bus_ops.write(&f.pci, 0, &addr, 4);
    pci_conf1_bus_ops.read(&f.pci, 4, &back, 4);
    assert_int_equal(back, 0xffffffff);
    addr = 0x80010000;
    pci_conf1_bus_ops.write(&f.pci, 0, &addr, 4);
    pci_conf1_bus_ops.read(&f.pci, 4, &back, 4);
    assert_int_equal(back, 0xffffffff);
    addr = 0x80000100;
    pci_conf1_bus_ops.write(&f.pci, 0, &addr, 4);
    pci_conf1_bus_ops.read(&f.pci, 4, &back, 4);
    assert_int_equal(back, 0xffffffff);
    pci_bus_destroy(&f.pci);
}

static int written_offset = -1;
static void note_write(struct pci_device *dev, unsigned offset, unsigned len)
{
    (void)dev;
    (void)len;
    written_offset = (int)offset;
}

static const struct pci_device_ops note_ops = {.config_written = note_write};

static void test_config_write_mask(void **state)
{
    (void)state;
    struct pci_bus pci;
    pci_bus_init(&pci);
    struct pci_device dev;
    pci_device_init(&dev, "test", 0x1af4, 0x1041, 0x020000, 1);
    dev.ops = &note_ops;
    le16_store(dev.wmask + PCI_COMMAND, 0x0407);
    dev.wmask[PCI_INTERRUPT_LINE] = 0xff;
    assert_int_equal(pci_bus_add(&pci, &dev, 3), 0);
    assert_int_equal(pci_bus_add(&pci, &dev, 3), -EEXIST);
    assert_int_equal(pci_bus_free_slot(&pci), 0);
    pci_config_write(&pci, 3, 0, PCI_VENDOR_ID, 4, 0xffffffff); /* read-only */
    assert_int_equal(pci_config_read(&pci, 3, 0, 0, 4), 0x10411af4);
    pci_config_write(&pci, 3, 0, PCI_COMMAND, 2, 0xffff);
    assert_int_equal(pci_config_read(&pci, 3, 0, PCI_COMMAND, 2), 0x0407);
    assert_int_equal(written_offset, PCI_COMMAND);
    pci_config_write(&pci, 3, 0, PCI_INTERRUPT_LINE, 1, 11);
    assert_int_equal(pci_config_read(&pci, 3, 0, PCI_INTERRUPT_LINE, 1), 11);
    /* Misaligned or oversized accesses are ignored. */
    assert_int_equal(pci_config_read(&pci, 3, 0, 1, 2), 0xffffffff);
    assert_int_equal(pci_config_read(&pci, 3, 0, 254, 4), 0xffffffff);
    pci_bus_destroy(&pci);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bus_dispatch_and_overlap),
        cmocka_unit_test(test_conf1_host_bridge),
        cmocka_unit_test(test_config_write_mask),
    };
    return cmocka_run_group_tests_name("pci_bus", tests, NULL, NULL);
}
