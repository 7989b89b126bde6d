/* libFuzzer target: the kernel loaders (bzImage, ELF vmlinux with or
 * without a PVH note), initrd placement and the command line, on arbitrary
 * files into guest memories of a few modest sizes. The input is an 8-byte
 * header — memory size, flags (an initrd, long-mode entry, a second command
 * line set once the board exists), command line length, initrd length —
 * then the kernel file, then the initrd. Each file must be refused with an
 * error by boot_prepare(), or loaded by boot_load() (which must then not
 * fail) entirely inside guest RAM: every segment above 1 MiB and below the
 * top of RAM, the initrd above the kernel and in RAM, and the initrd and
 * command line still intact in guest memory after everything else was
 * written (nothing the loader writes — page tables, boot_params, PVH start
 * info — may overlap them). ASan watches the parsing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/boot.h"
#include "arch/x86_64/layout.h"
#include "util/log.h"
#include "util/util.h"

#define HEADER 8

static const uint64_t ram_sizes[] = {
    1ull << 20,                /* nothing above 1 MiB: refused */
    (1ull << 20) + (64 << 10), /* 64 KiB above it */
    2ull << 20, 8ull << 20, 32ull << 20,
};
#define NR_SIZES (sizeof(ram_sizes) / sizeof(ram_sizes[0]))

static char cmdline[LAYOUT_CMDLINE_MAX + 16], cmdline2[LAYOUT_CMDLINE_MAX + 16];

static void make_cmdline(char *buf, size_t len, char c)
{
    memset(buf, c, len);
    buf[len] = '\0';
}

/* What boot_prepare() accepted must lie where it promises. */
static void check_layout(const struct boot_config *cfg, const struct boot_layout *l)
{
    uint64_t top = MIN(cfg->ram_size, LAYOUT_PCI_HOLE_START);
    const struct kernel_image *k = &l->kernel;
    if (k->nr_segs == 0 || k->nr_segs > KERNEL_MAX_SEGMENTS)
        abort();
    for (unsigned i = 0; i < k->nr_segs; i++) {
        const struct kernel_segment *s = &k->segs[i];
        const uint8_t *file = cfg->kernel.data;
        if (s->gpa < LAYOUT_HIGH_RAM || s->mem_size > top || s->gpa > top - s->mem_size ||
            s->file_size > s->mem_size)
            abort(); /* a segment outside the RAM above 1 MiB */
        if (s->src < file || s->file_size > cfg->kernel.size ||
            (size_t)(s->src - file) > cfg->kernel.size - s->file_size)
            abort(); /* a segment's bytes outside the file */
    }
    if (l->cmdline_len >= LAYOUT_CMDLINE_MAX)
        abort();
    if (cfg->initrd.data && (l->initrd_size != cfg->initrd.size ||
                             l->initrd_gpa < align_up(k->mem_end, 4096) ||
                             l->initrd_gpa > top || l->initrd_size > top - l->initrd_gpa))
        abort(); /* the initrd overlaps the kernel or leaves RAM */
}

static void check_loaded(const struct boot_config *cfg, const struct boot_layout *l,
                         const struct guest_mem *gm, const struct x86_regs *regs)
{
    const char *c = cfg->cmdline ? cfg->cmdline : "";
    const uint8_t *at = gm_ptr(gm, LAYOUT_CMDLINE, l->cmdline_len + 1);
    if (!at || memcmp(at, c, l->cmdline_len + 1))
        abort(); /* the command line was overwritten */
    if (l->initrd_size) {
        at = gm_ptr(gm, l->initrd_gpa, l->initrd_size);
        if (!at || memcmp(at, cfg->initrd.data, l->initrd_size))
            abort(); /* the initrd was overwritten */
    }
    if (regs->rip != l->kernel.entry_addr)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem gms[NR_SIZES];
    static bool ready;
    if (!ready) {
        for (unsigned i = 0; i < NR_SIZES; i++)
            if (gm_create_anon(&gms[i], ram_sizes[i], LAYOUT_PCI_HOLE_START))
                abort();
        log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_ERROR);
        ready = true;
    }
    if (size < HEADER)
        return 0;
    const struct guest_mem *gm = &gms[data[0] % NR_SIZES];
    size_t cmdline_len = MIN(le16_load(data + 2) * (size_t)((data[1] & 8) ? 2 : 1),
                             sizeof(cmdline) - 1);
    size_t rest = size - HEADER;
    size_t initrd_len = (data[1] & 1) ? MIN(le32_load(data + 4), rest) : 0;
    make_cmdline(cmdline, cmdline_len, 'k');
    struct boot_config cfg = {
        .kernel = {"kernel", data + HEADER, rest - initrd_len},
        .initrd = {"initrd", (data[1] & 1) ? data + size - initrd_len : NULL, initrd_len},
        .cmdline = (data[1] & 4) && cmdline_len == 0 ? NULL : cmdline,
        .ram_size = ram_sizes[data[0] % NR_SIZES],
        .long_mode_entry = data[1] & 2,
    };
    struct boot_layout layout;
    bool verbose = getenv("FUZZ_VERBOSE");
    if (boot_prepare(&cfg, &layout)) {
        if (verbose)
            fprintf(stderr, "refused: %s\n", err_msg());
        return 0; /* refused, with a message: fine */
    }
    check_layout(&cfg, &layout);
    if (data[1] & 0x10) { /* the board adds its words */
        make_cmdline(cmdline2, MIN((size_t)data[1] << 8 | data[7], sizeof(cmdline2) - 1), 'b');
        if (boot_set_cmdline(&cfg, &layout, cmdline2))
            cfg.cmdline = cmdline; /* refused: the first one stays */
        check_layout(&cfg, &layout);
    }
    struct x86_regs regs;
    struct x86_sregs sregs;
    if (boot_load(&cfg, &layout, gm, &regs, &sregs)) {
        fprintf(stderr, "prepared, then not loaded: %s\n", err_msg());
        abort(); /* boot_prepare promises every error is found before this */
    }
    check_loaded(&cfg, &layout, gm, &regs);
    if (verbose)
        fprintf(stderr, "loaded: %s, entry %#llx, %u segments to %#llx, initrd %#llx+%#llx, "
                "command line %zu bytes\n", layout.kernel.format == KERNEL_ELF ? "ELF" : "bzImage",
                (unsigned long long)layout.kernel.entry_addr, layout.kernel.nr_segs,
                (unsigned long long)layout.kernel.mem_end, (unsigned long long)layout.initrd_gpa,
                (unsigned long long)layout.initrd_size, layout.cmdline_len);
    /* Zeroed again for the next input (boot_load wants zeroed memory). */
    for (unsigned i = 0; i < gm->nr_regions; i++)
        if (gm_discard(gm, gm->regions[i].gpa, gm->regions[i].size))
            abort();
    return 0;
}
