/* cpurun: boot a Linux bzImage on ember's CPU engine alone, with a minimal
 * UART at 0x3f8 (THR writes go to stdout, LSR reads 0x60) and nothing else:
 * other ports read all-ones, MMIO reads all-ones, no interrupts, no timers.
 * For engine bring-up: it shows how far the kernel gets and how fast.
 *
 *   cpurun [--kernel F] [--mem MiB] [--cmdline S] [--max-insns N]
 *          [--timeout SEC] [--trace-int] [--system-map F] [--quiet-stats]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86_64/boot.h"
#include "arch/x86_64/layout.h"
#include "cpu/cpu.h"
#include "mem/guest_mem.h"
#include "util/err.h"

struct uart {
    uint8_t lcr, ier, mcr, scr, dll, dlm;
    unsigned long chars;
};

struct runner {
    struct uart uart;
    bool trace;
    unsigned long unclaimed_pio, unclaimed_mmio, msr_refused;
};

static void pio(void *ctx, uint16_t port, void *data, unsigned len, bool write)
{
    struct runner *r = ctx;
    struct uart *u = &r->uart;
    uint8_t *d = data;
    if (port < 0x3f8 || port > 0x3ff || len != 1) {
        r->unclaimed_pio++;
        return; /* reads stay all-ones */
    }
    bool dlab = u->lcr & 0x80;
    switch (port - 0x3f8) {
    case 0:
        if (write) {
            if (dlab) {
                u->dll = *d;
            } else {
                fputc(*d, stdout);
                if (*d == '\n')
                    fflush(stdout);
                u->chars++;
            }
        } else {
            *d = dlab ? u->dll : 0;
        }
        break;
    case 1:
        if (write) {
            if (dlab) u->dlm = *d; else u->ier = *d & 0xf;
        } else {
            *d = dlab ? u->dlm : u->ier;
        }
        break;
    case 2: if (!write) *d = 0x01; break; /* IIR: no interrupt pending */
    case 3: if (write) u->lcr = *d; else *d = u->lcr; break;
    case 4: if (write) u->mcr = *d; else *d = u->mcr; break;
    case 5: if (!write) *d = 0x60; break; /* LSR: THR and transmitter empty */
    case 6: if (!write) *d = 0xb0; break; /* MSR: DCD DSR CTS */
    default: if (write) u->scr = *d; else *d = u->scr; break;
    }
}

static bool mmio(void *ctx, uint64_t gpa, void *data, unsigned len, bool write)
{
    struct runner *r = ctx;
    (void)gpa; (void)data; (void)len; (void)write;
    r->unclaimed_mmio++;
    return false;
}

static bool msr(void *ctx, uint32_t index, uint64_t *value, bool write)
{
    struct runner *r = ctx;
    (void)index; (void)value; (void)write;
    r->msr_refused++;
    return false;
}

static int intr(void *ctx)
{
    (void)ctx;
    return -1;
}

static void debug(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "[engine] %s\n", msg);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return -errno;
    }
    *data = malloc((size_t)st.st_size);
    size_t got = 0;
    while (*data && got < (size_t)st.st_size) {
        ssize_t n = read(fd, *data + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *size = got;
    return *data && got == (size_t)st.st_size ? 0 : -EIO;
}

/* Symbolize with System.map: the nearest symbol at or below 'addr'. */
static void symbolize(const char *map, uint64_t addr, char *out, size_t outlen)
{
    snprintf(out, outlen, "?");
    FILE *f = map ? fopen(map, "r") : NULL;
    if (!f)
        return;
    char line[256], best[200] = "";
    uint64_t best_addr = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long a;
        char type, name[200];
        if (sscanf(line, "%llx %c %199s", &a, &type, name) != 3)
            continue;
        if (a <= addr && a >= best_addr) {
            best_addr = a;
            snprintf(best, sizeof(best), "%s", name);
        }
    }
    fclose(f);
    if (best[0])
        snprintf(out, outlen, "%s+%#llx", best, (unsigned long long)(addr - best_addr));
}

int main(int argc, char **argv)
{
    const char *kernel = "build/guest/vmlinuz";
    const char *cmdline = "console=ttyS0 earlyprintk=serial,ttyS0 nokaslr";
    const char *sysmap = NULL;
    uint64_t mem_mib = 256, max_insns = 0;
    double timeout = 60;
    bool trace = false, quiet_stats = false;
    const char *dumps[16];
    unsigned ndumps = 0;
    const char *walks[8];
    unsigned nwalks = 0;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--kernel") && k + 1 < argc) kernel = argv[++k];
        else if (!strcmp(argv[k], "--mem") && k + 1 < argc) mem_mib = strtoull(argv[++k], 0, 0);
        else if (!strcmp(argv[k], "--cmdline") && k + 1 < argc) cmdline = argv[++k];
        else if (!strcmp(argv[k], "--max-insns") && k + 1 < argc) max_insns = strtoull(argv[++k], 0, 0);
        else if (!strcmp(argv[k], "--timeout") && k + 1 < argc) timeout = atof(argv[++k]);
        else if (!strcmp(argv[k], "--system-map") && k + 1 < argc) sysmap = argv[++k];
        else if (!strcmp(argv[k], "--trace-int")) trace = true;
        else if (!strcmp(argv[k], "--quiet-stats")) quiet_stats = true;
        else if (!strcmp(argv[k], "--dump") && k + 1 < argc && ndumps < 16) dumps[ndumps++] = argv[++k];
        else if (!strcmp(argv[k], "--walk") && k + 1 < argc && nwalks < 8) walks[nwalks++] = argv[++k];
        else {
            fprintf(stderr, "usage: %s [--kernel F] [--mem MiB] [--cmdline S] [--max-insns N] "
                            "[--timeout SEC] [--trace-int] [--system-map F] [--quiet-stats]\n",
                    argv[0]);
            return 2;
        }
    }
    struct boot_config bc = {.cmdline = cmdline, .ram_size = mem_mib << 20};
    uint8_t *kdata = NULL;
    size_t ksize = 0;
    if (read_file(kernel, &kdata, &ksize)) {
        fprintf(stderr, "cpurun: cannot read %s (run 'make guest')\n", kernel);
        return 1;
    }
    bc.kernel = (struct boot_file){.path = kernel, .data = kdata, .size = ksize};
    struct boot_layout layout;
    struct guest_mem gm;
    struct x86_regs regs;
    struct x86_sregs sregs;
    if (boot_prepare(&bc, &layout) || gm_create_anon(&gm, bc.ram_size, LAYOUT_PCI_HOLE_START) ||
        boot_load(&bc, &layout, &gm, &regs, &sregs)) {
        fprintf(stderr, "cpurun: %s\n", err_msg());
        return 1;
    }
    struct runner r = {.trace = trace};
    struct cpu_config cfg = {
        .mem = &gm,
        .ops = {.ctx = &r, .pio = pio, .mmio = mmio, .msr = msr, .intr = intr, .debug = debug},
        .flags = trace ? CPU_CFG_TRACE_INT : 0,
    };
    struct cpu *cpu = cpu_create(&cfg);
    if (!cpu || cpu_set_sregs(cpu, &sregs)) {
        fprintf(stderr, "cpurun: cannot create the vCPU\n");
        return 1;
    }
    cpu_set_regs(cpu, &regs);
    double t0 = now(), c0 = cpu_now();
    struct cpu_exit ex;
    int reason;
    uint64_t done = 0;
    const char *why = "";
    for (;;) {
        uint64_t chunk = 20000000;
        if (max_insns && max_insns - done < chunk)
            chunk = max_insns - done;
        cpu_set_insn_limit(cpu, chunk);
        reason = cpu_run(cpu, &ex);
        struct cpu_stats st;
        cpu_get_stats(cpu, &st);
        done = st.insns;
        if (reason != CPU_EXIT_INTERRUPTED) {
            why = reason == CPU_EXIT_HALT ? "HLT with no interrupt source"
                : reason == CPU_EXIT_SHUTDOWN ? "triple fault (shutdown)"
                : reason == CPU_EXIT_ERROR ? "engine error" : "exception exit";
            break;
        }
        if (max_insns && done >= max_insns) {
            why = "instruction limit";
            break;
        }
        if (now() - t0 > timeout) {
            why = "timeout";
            break;
        }
    }
    double dt = now() - t0, cdt = cpu_now() - c0;
    fflush(stdout);
    struct cpu_stats st;
    cpu_get_stats(cpu, &st);
    cpu_get_regs(cpu, &regs);
    if (!sysmap) {
        static char def[256];
        snprintf(def, sizeof(def), "build/dbg/usr/lib/debug/boot/System.map-6.1.0-57-cloud-amd64");
        if (access(def, R_OK) == 0)
            sysmap = def;
    }
    char sym[256];
    symbolize(sysmap, regs.rip, sym, sizeof(sym));
    fprintf(stderr, "\ncpurun: stopped: %s at rip %#" PRIx64 " (%s)\n", why, regs.rip, sym);
    if (reason == CPU_EXIT_ERROR)
        fprintf(stderr, "cpurun: %s\n", ex.detail);
    if (!quiet_stats) {
        fprintf(stderr, "cpurun: %" PRIu64 " instructions in %.2f s = %.1f MIPS (CPU time %.2f s = "
                        "%.1f MIPS); blocks built %"
                        PRIu64 ", invalidated %" PRIu64 ", cache flushes %" PRIu64
                        "; TLB misses %" PRIu64 ", flushes %" PRIu64 "; host-exec %" PRIu64 "\n",
                st.insns, dt, st.insns / dt / 1e6, cdt, st.insns / cdt / 1e6, st.blocks_built,
                st.blocks_invalidated,
                st.cache_flushes, st.tlb_misses, st.tlb_flushes, st.hostexec);
        fprintf(stderr, "cpurun: exceptions:");
        for (int v = 0; v < 32; v++)
            if (st.exceptions[v])
                fprintf(stderr, " #%d:%" PRIu64, v, st.exceptions[v]);
        fprintf(stderr, "; pio %" PRIu64 " (unclaimed %lu), mmio %" PRIu64 ", MSRs refused %lu, "
                        "UART chars %lu\n",
                st.pio, r.unclaimed_pio, st.mmio, r.msr_refused, r.uart.chars);
        fprintf(stderr, "cpurun: rax=%#" PRIx64 " rbx=%#" PRIx64 " rcx=%#" PRIx64 " rdx=%#" PRIx64
                        " rsi=%#" PRIx64 " rdi=%#" PRIx64 " rsp=%#" PRIx64 " rbp=%#" PRIx64
                        " rflags=%#" PRIx64 "\n",
                regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.rsp, regs.rbp,
                regs.rflags);
    }
    for (unsigned k = 0; k < ndumps; k++) {
        /* --dump ADDR[:N]: N qwords of guest-physical memory (a kernel-image
         * virtual address 0xffffffff8xxxxxxx is taken as phys + 0xffffffff80000000) */
        unsigned long long a = strtoull(dumps[k], NULL, 0);
        const char *colon = strchr(dumps[k], ':');
        unsigned n = colon ? (unsigned)strtoul(colon + 1, NULL, 0) : 8;
        if (a >= 0xffffffff80000000ull)
            a -= 0xffffffff80000000ull;
        for (unsigned j = 0; j < n; j++) {
            uint64_t v = 0;
            if (gm_read(&gm, a + 8 * j, &v, 8))
                break;
            fprintf(stderr, "%s%#llx: %016" PRIx64 "%s", j % 4 ? "" : "  ", a + 8 * j, v,
                    j % 4 == 3 ? "\n" : " ");
        }
        fprintf(stderr, "\n");
    }
    struct x86_sregs sr;
    cpu_get_sregs(cpu, &sr);
    for (unsigned k = 0; k < nwalks; k++) {
        /* --walk VA: the page walk through the final CR3 */
        uint64_t va = strtoull(walks[k], NULL, 0), table = sr.cr3 & 0x000ffffffffff000ull;
        fprintf(stderr, "walk %#" PRIx64 " (cr3 %#" PRIx64 "):", va, sr.cr3);
        for (int level = 3; level >= 0; level--) {
            uint64_t e = 0, pa = table + ((va >> (12 + 9 * level)) & 511) * 8;
            if (gm_read(&gm, pa, &e, 8))
                break;
            fprintf(stderr, " L%d[%#" PRIx64 "]=%016" PRIx64, level + 1, pa, e);
            if (!(e & 1) || (level > 0 && level < 3 && (e & 0x80)))
                break;
            table = e & 0x000ffffffffff000ull;
        }
        fprintf(stderr, "\n");
    }
    cpu_destroy(cpu);
    gm_destroy(&gm);
    free(kdata);
    return reason == CPU_EXIT_ERROR ? 1 : 0;
}
