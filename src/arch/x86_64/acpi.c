#include "arch/x86_64/acpi.h"

#include <string.h>

#include "arch/x86_64/aml.h"
#include "arch/x86_64/layout.h"
#include "util/util.h"

#define ACPI_OEM_ID "EMBER "
#define ACPI_OEM_TABLE_ID "EMBERVM "
#define ACPI_CREATOR_ID "EMBR"
#define ACPI_HEADER_SIZE 36

#define FADT_SIZE 276
#define FADT_REVISION 6
#define FACS_SIZE 64

#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_SOURCE_OVERRIDE 2
#define MADT_LAPIC_NMI 4
#define MADT_MP_WAKEUP 0x10
#define MPS_INTI_LEVEL_HIGH 0x000d /* level-triggered, active high */

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2
#define GAS_ACCESS_DWORD 3

/* FADT flags and IA-PC boot architecture flags. */
#define FADT_WBINVD (1u << 0)
#define FADT_C1_SUPPORTED (1u << 2)
#define FADT_POWER_BUTTON_IS_METHOD (1u << 4)
#define FADT_SLEEP_BUTTON_IS_METHOD (1u << 5)
#define FADT_TMR_VAL_EXT (1u << 8)
#define BOOT_ARCH_LEGACY_DEVICES (1u << 0)
#define BOOT_ARCH_8042 (1u << 1)
#define BOOT_ARCH_NO_VGA (1u << 2)

struct acpi_writer {
    uint8_t *area;
    size_t size;
    size_t used;
    uint64_t gpa;
};

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

/* Reserve 'len' bytes aligned to 'align'; NULL when the area is full. */
static uint8_t *acpi_alloc(struct acpi_writer *w, size_t len, size_t align, uint64_t *gpa)
{
    size_t start = align_up(w->used, align);
    if (start > w->size || len > w->size - start)
        return NULL;
    w->used = start + len;
    *gpa = w->gpa + start;
    memset(w->area + start, 0, len);
    return w->area + start;
}

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t revision)
{
    memcpy(t, sig, 4);
    le32_store(t + 4, len);
    t[8] = revision;
    memcpy(t + 10, ACPI_OEM_ID, 6);
    memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
    le32_store(t + 24, 1);
    memcpy(t + 28, ACPI_CREATOR_ID, 4);
    le32_store(t + 32, 1);
}

static void acpi_finish(uint8_t *t, size_t len)
{
    t[9] = 0;
    t[9] = (uint8_t)(0 - acpi_checksum(t, len));
}

static void gas_io(uint8_t *g, uint16_t port, uint8_t bits, uint8_t access)
{
    g[0] = GAS_SYSTEM_IO;
    g[1] = bits;
    g[2] = 0;
    g[3] = access;
    le64_store(g + 4, port);
}

static void resource_template(struct aml_buf *b, const struct aml_buf *res)
{
    size_t mark = aml_buffer_begin(b, res->len);
    aml_bytes(b, res->data, res->len);
    aml_end(b, mark);
}

static void dsdt_pci_host(struct aml_buf *b)
{
    size_t dev = aml_device_begin(b, "PCI0");
    aml_name(b, "_HID");
    aml_eisaid(b, "PNP0A03");
    aml_name(b, "_ADR");
    aml_integer(b, 0);
    aml_name(b, "_UID");
    aml_integer(b, 0);
    aml_name(b, "_BBN");
    aml_integer(b, 0);
    struct aml_buf res;
    aml_init(&res);
    aml_res_bus_numbers(&res, 0, 0xff);
    aml_res_io(&res, PORT_PCI_CONFIG_ADDRESS, 8);
    aml_res_io_window(&res, 0x0000, PORT_PCI_CONFIG_ADDRESS - 1);
    aml_res_io_window(&res, 0x0d00, 0xffff);
    aml_res_mem32_window(&res, (uint32_t)LAYOUT_PCI_MMIO_START, (uint32_t)LAYOUT_PCI_MMIO_END);
    aml_res_end(&res);
    aml_name(b, "_CRS");
    resource_template(b, &res);
    b->failed |= res.failed;
    aml_free(&res);
    /* _PRT: INTA-INTD of every slot to IOAPIC pins 16-23. */
    aml_name(b, "_PRT");
    size_t prt = aml_package_begin(b, 31 * 4);
    for (unsigned slot = 1; slot < 32; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            size_t entry = aml_package_begin(b, 4);
            aml_integer(b, ((uint64_t)slot << 16) | 0xffff);
            aml_integer(b, pin);
            aml_integer(b, 0);
            aml_integer(b, PCI_INTX_GSI(slot, pin));
            aml_end(b, entry);
        }
    }
    aml_end(b, prt);
    aml_end(b, dev);
}

static void dsdt_device(struct aml_buf *b, const struct acpi_device *d)
{
    size_t dev = aml_device_begin(b, d->name);
    aml_name(b, "_HID");
    if (d->hid_is_string)
        aml_string(b, d->hid);
    else
        aml_eisaid(b, d->hid);
    if (d->uid >= 0) {
        aml_name(b, "_UID");
        aml_integer(b, (uint64_t)d->uid);
    }
    struct aml_buf res;
    aml_init(&res);
    for (unsigned i = 0; i < d->nr_io && i < ACPI_MAX_IO; i++)
        aml_res_io(&res, d->io[i].base, d->io[i].len);
    for (unsigned i = 0; i < d->nr_mem && i < ACPI_MAX_MEM; i++)
        aml_res_mem32_fixed(&res, d->mem[i].base, d->mem[i].len);
    if (d->irq >= 0 && d->irq_gsi)
        aml_res_interrupt(&res, (uint32_t)d->irq);
    else if (d->irq >= 0)
        aml_res_irq(&res, (unsigned)d->irq);
    aml_res_end(&res);
    aml_name(b, "_CRS");
    resource_template(b, &res);
    b->failed |= res.failed;
    aml_free(&res);
    aml_end(b, dev);
}

static void dsdt_body(struct aml_buf *b, const struct acpi_config *cfg)
{
    size_t sb = aml_scope_begin(b, "\\_SB_");
    if (!cfg->without_pci)
        dsdt_pci_host(b);
    for (unsigned i = 0; i < cfg->nr_devices; i++)
        dsdt_device(b, &cfg->devices[i]);
    aml_end(b, sb);
    /* \_S5: the SLP_TYP values for soft-off, read by the guest's power-off. */
    aml_name(b, "\\_S5_");
    size_t pkg = aml_package_begin(b, 4);
    aml_integer(b, ACPI_S5_SLP_TYP);
    aml_integer(b, ACPI_S5_SLP_TYP);
    aml_integer(b, 0);
    aml_integer(b, 0);
    aml_end(b, pkg);
}

static int build_dsdt(struct acpi_writer *w, const struct acpi_config *cfg, uint64_t *gpa)
{
    struct aml_buf body;
    aml_init(&body);
    dsdt_body(&body, cfg);
    int ret = 0;
    uint8_t *t = NULL;
    if (body.failed)
        ret = err_set(-ENOMEM, "out of memory building the DSDT");
    else if (!(t = acpi_alloc(w, ACPI_HEADER_SIZE + body.len, 16, gpa)))
        ret = err_set(-ENOSPC, "ACPI tables do not fit");
    if (!ret) {
        acpi_header(t, "DSDT", (uint32_t)(ACPI_HEADER_SIZE + body.len), 2);
        memcpy(t + ACPI_HEADER_SIZE, body.data, body.len);
        acpi_finish(t, ACPI_HEADER_SIZE + body.len);
    }
    aml_free(&body);
    return ret;
}

static int build_facs(struct acpi_writer *w, uint64_t *gpa)
{
    uint8_t *t = acpi_alloc(w, FACS_SIZE, 64, gpa);
    if (!t)
        return err_set(-ENOSPC, "ACPI tables do not fit");
    memcpy(t, "FACS", 4);
    le32_store(t + 4, FACS_SIZE);
    t[32] = 2; /* version */
    return 0;
}

static int build_fadt(struct acpi_writer *w, uint64_t dsdt, uint64_t facs, uint64_t *gpa)
{
    uint8_t *t = acpi_alloc(w, FADT_SIZE, 16, gpa);
    if (!t)
        return err_set(-ENOSPC, "ACPI tables do not fit");
    acpi_header(t, "FACP", FADT_SIZE, FADT_REVISION);
    le32_store(t + 36, (uint32_t)facs); /* X_FIRMWARE_CTRL stays 0: one FACS */
    le32_store(t + 40, (uint32_t)dsdt);
    le16_store(t + 46, IRQ_ACPI_SCI);
    /* SMI_CMD 0: the platform is always in ACPI mode. */
    le32_store(t + 56, PORT_ACPI_PM1_EVT);
    le32_store(t + 64, PORT_ACPI_PM1_CNT);
    le32_store(t + 76, PORT_ACPI_PM_TMR);
    t[88] = 4; /* PM1_EVT_LEN */
    t[89] = 2; /* PM1_CNT_LEN */
    t[91] = 4; /* PM_TMR_LEN */
    le16_store(t + 96, 101);  /* P_LVL2_LAT > 100: C2 not supported */
    le16_store(t + 98, 1001); /* P_LVL3_LAT > 1000: C3 not supported */
    t[108] = 0x32;            /* CENTURY: RTC register */
    le16_store(t + 109, BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 | BOOT_ARCH_NO_VGA);
    le32_store(t + 112, FADT_WBINVD | FADT_C1_SUPPORTED | FADT_POWER_BUTTON_IS_METHOD |
                            FADT_SLEEP_BUTTON_IS_METHOD | FADT_TMR_VAL_EXT);
    t[131] = 0; /* minor version */

    le64_store(t + 140, dsdt);
    gas_io(t + 148, PORT_ACPI_PM1_EVT, 32, GAS_ACCESS_WORD);
    gas_io(t + 172, PORT_ACPI_PM1_CNT, 16, GAS_ACCESS_WORD);
    gas_io(t + 208, PORT_ACPI_PM_TMR, 32, GAS_ACCESS_DWORD);
    memcpy(t + 268, "EMBERVMM", 8); /* hypervisor vendor identity */
    acpi_finish(t, FADT_SIZE);
    return 0;
}

static int build_madt(struct acpi_writer *w, const struct acpi_config *cfg, uint64_t *gpa)
{
    size_t len = ACPI_HEADER_SIZE + 8 + cfg->nr_vcpus * 8 + 12 + 2 * 10 + 6 +
                 (cfg->mp_wakeup_mailbox ? 16 : 0);
    uint8_t *t = acpi_alloc(w, len, 16, gpa);
    if (!t)
        return err_set(-ENOSPC, "ACPI tables do not fit");
    acpi_header(t, "APIC", (uint32_t)len, 4);
    le32_store(t + 36, (uint32_t)LAYOUT_LAPIC);
    le32_store(t + 40, MADT_PCAT_COMPAT);
    uint8_t *e = t + 44;
    for (unsigned i = 0; i < cfg->nr_vcpus; i++, e += 8) {
        e[0] = MADT_LAPIC;
        e[1] = 8;
        e[2] = (uint8_t)i; /* ACPI processor UID */
        e[3] = (uint8_t)i; /* APIC ID */
        le32_store(e + 4, 1); /* enabled */
    }
    e[0] = MADT_IOAPIC;
    e[1] = 12;
    e[2] = cfg->ioapic_id;
    le32_store(e + 4, (uint32_t)LAYOUT_IOAPIC);
    le32_store(e + 8, 0); /* GSI base */
    e += 12;
    /* ISA IRQ 0 (the PIT) arrives on IOAPIC pin 2; the SCI is level-high. */
    static const struct { uint8_t irq; uint32_t gsi; uint16_t flags; } overrides[] = {
        {0, 2, 0},
        {IRQ_ACPI_SCI, IRQ_ACPI_SCI, MPS_INTI_LEVEL_HIGH},
    };
    for (size_t i = 0; i < ARRAY_SIZE(overrides); i++, e += 10) {
        e[0] = MADT_SOURCE_OVERRIDE;
        e[1] = 10;
        e[2] = 0; /* ISA */
        e[3] = overrides[i].irq;
        le32_store(e + 4, overrides[i].gsi);
        le16_store(e + 8, overrides[i].flags);
    }
    e[0] = MADT_LAPIC_NMI;
    e[1] = 6;
    e[2] = 0xff; /* all processors */
    le16_store(e + 3, 0);
    e[5] = 1; /* LINT1 */
    e += 6;
    if (cfg->mp_wakeup_mailbox) {
        /* ACPI 6.4 5.2.12.19: APs wait for the OS's wakeup command there */
        e[0] = MADT_MP_WAKEUP;
        e[1] = 16;
        le16_store(e + 2, 0); /* mailbox version */
        le32_store(e + 4, 0);
        le64_store(e + 8, cfg->mp_wakeup_mailbox);
    }
    acpi_finish(t, len);
    return 0;
}

static int build_xsdt(struct acpi_writer *w, const uint64_t *tables, size_t n, uint64_t *gpa)
{
    size_t len = ACPI_HEADER_SIZE + n * 8;
    uint8_t *t = acpi_alloc(w, len, 16, gpa);
    if (!t)
        return err_set(-ENOSPC, "ACPI tables do not fit");
    acpi_header(t, "XSDT", (uint32_t)len, 1);
    for (size_t i = 0; i < n; i++)
        le64_store(t + ACPI_HEADER_SIZE + i * 8, tables[i]);
    acpi_finish(t, len);
    return 0;
}

static void build_rsdp(uint8_t *r, uint64_t xsdt)
{
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, ACPI_OEM_ID, 6);
    r[15] = 2;                /* revision: ACPI 2.0+, has the XSDT */
    le32_store(r + 20, 36);   /* length */
    le64_store(r + 24, xsdt);
    r[8] = (uint8_t)(0 - acpi_checksum(r, 20));
    r[32] = (uint8_t)(0 - acpi_checksum(r, 36));
}

int acpi_build(const struct acpi_config *cfg, uint8_t *area, size_t area_size,
               uint64_t area_gpa)
{
    if (cfg->nr_vcpus == 0 || cfg->nr_vcpus > 255)
        return err_set(-EINVAL, "ACPI: bad vCPU count %u", cfg->nr_vcpus);
    struct acpi_writer w = {area, area_size, 0, area_gpa};
    uint64_t rsdp = 0, dsdt = 0, facs = 0, fadt = 0, madt = 0, xsdt = 0;
    uint8_t *r = acpi_alloc(&w, 36, 16, &rsdp);
    if (!r)
        return err_set(-ENOSPC, "ACPI area too small");
    int ret = build_dsdt(&w, cfg, &dsdt);
    if (!ret)
        ret = build_facs(&w, &facs);
    if (!ret)
        ret = build_fadt(&w, dsdt, facs, &fadt);
    if (!ret)
        ret = build_madt(&w, cfg, &madt);
    if (ret)
        return ret;
    const uint64_t tables[] = {fadt, madt};
    ret = build_xsdt(&w, tables, ARRAY_SIZE(tables), &xsdt);
    if (!ret)
        build_rsdp(r, xsdt);
    return ret;
}
