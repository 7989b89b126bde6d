/* ember's own x86-64 CPU engine: an interpreter that executes guest code
 * itself, for hosts without hardware virtualization.
 *
 * Scope: 64-bit long mode as the Linux boot protocol leaves it (paging on,
 * CS.L=1), and short stretches of flat 32-bit code; one vCPU per struct
 * cpu (several take turns through the pause/code_page/code_written hooks). Guest code is decoded once into
 * predecoded records grouped in blocks keyed by guest-physical address;
 * handlers tail-call the next record; flags are lazy; each vCPU has a soft
 * TLB. x87/MMX/SSE instructions run on the host's own instructions with the
 * guest's FXSAVE image loaded.
 *
 * Threads: every function here except cpu_signal() and cpu_notify_write()
 * must be called from the thread that owns the vCPU (the one calling
 * cpu_run), and not while cpu_run is running. cpu_signal() and
 * cpu_notify_write() may be called from any thread at any time.
 *
 * The engine has no global mutable state and never prints; diagnostics go
 * to the optional debug hook.
 *
 * What the guest sees (cpu_supported_cpuid): AuthenticAMD, family 15 model
 * 0x6b, with fpu tsc msr pae pse cx8 mtrr pge cmov pat clflush mmx fxsr sse
 * sse2 sse3 ssse3 sse4.1 sse4.2 cx16 movbe popcnt rdrand hypervisor, and aes and
 * pclmulqdq where the host has them (they run on its instructions); extended:
 * syscall nx pdpe1gb rdtscp lm lahf cr8_legacy abm(lzcnt) misalignsse
 * invariant-tsc; leaf 7: fsgsbase, bmi1, bmi2, adx, clflushopt, and sha where
 * the host has it. No APIC bit (the VMM sets it with its
 * interrupt controller), no XSAVE/AVX, no PCID/INVPCID, no SMEP/SMAP.
 * CPUID leaf 0x40000010 EAX gives the TSC frequency in kHz.
 *
 * Not implemented (the engine stops with CPU_EXIT_ERROR rather than run it
 * wrongly): 32-bit code beyond its integer, control-register and far-jump
 * subset (decode32_supported), segments with a base in it, exceptions
 * outside long mode, real mode; far transfers through call gates/TSS. Debug registers are stored but
 * the guest's breakpoints do not fire; single-step (RFLAGS.TF) works. A
 * debugger's breakpoints and steps do (cpu_set_debug).
 */
#ifndef EMBER_CPU_CPU_H
#define EMBER_CPU_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/cpu_state.h"
#include "mem/guest_mem.h"

struct cpu;

/* Callbacks into the VMM. All are called on the vCPU thread, from inside
 * cpu_run, synchronously. 'ctx' is cpu_ops.ctx. */
struct cpu_ops {
    void *ctx;
    /* Port I/O of 'len' (1, 2, 4) bytes. A read fills 'data' (the engine
     * pre-fills all-ones, so an unclaimed port may leave it alone). */
    void (*pio)(void *ctx, uint16_t port, void *data, unsigned len, bool is_write);
    /* An access of 'len' (1, 2, 4, 8; larger accesses are split) bytes to a
     * guest-physical address outside RAM. Returns false if nothing claims
     * it: reads then give all-ones, writes are dropped. */
    bool (*mmio)(void *ctx, uint64_t gpa, void *data, unsigned len, bool is_write);
    /* MSRs the engine does not own (APIC base 0x1b, TSC deadline 0x6e0,
     * kvm-clock, ...). Returns false to make the instruction #GP(0).
     * (x86_sregs.apic_base is only what cpu_set_sregs stored.) */
    bool (*msr)(void *ctx, uint32_t index, uint64_t *value, bool is_write);
    /* Called at an instruction boundary when CPU_EVENT_INTERRUPT is set,
     * RFLAGS.IF=1 and no interrupt shadow is active: returns the vector to
     * deliver now (the callback has acknowledged it in the interrupt
     * controller) or -1. After a delivery the engine calls it again at the
     * next boundary, until it returns -1. */
    int (*intr)(void *ctx);
    /* Guest clock in ns (frozen while the VM is paused); the TSC is derived
     * from it at CPU_TSC_HZ. Optional (NULL: CLOCK_MONOTONIC). */
    uint64_t (*clock_ns)(void *ctx);
    /* Optional: diagnostics (one line, no newline). */
    void (*debug)(void *ctx, const char *msg);
    /* Optional: something the guest got that real hardware would not have
     * given it, for the operator (one line, no newline). */
    void (*warn)(void *ctx, const char *msg);
    /* Optional, for vCPUs that take turns on the host (at most one inside
     * cpu_run at a time): PAUSE ran; true ends cpu_run (CPU_EXIT_INTERRUPTED)
     * so that another vCPU, the one a spin-wait waits for, can run. */
    bool (*pause)(void *ctx);
    /* Optional, ditto: a guest-physical page gained ('on') or lost this
     * vCPU's decoded code; the VMM passes it to the other vCPUs with
     * cpu_foreign_code(), and their writes to the page then reach ... */
    void (*code_page)(void *ctx, uint64_t page, bool on);
    /* ... this: the vCPU wrote [gpa, gpa+len) on a page holding another
     * vCPU's decoded code (the VMM calls cpu_notify_write() on the others). */
    void (*code_written)(void *ctx, uint64_t gpa, uint64_t len);
    /* Optional: the translator put host code for the block at guest
     * address 'va' at [host, host + len) (a profiler's symbol map). */
    void (*code_translated)(void *ctx, const void *host, size_t len, uint64_t va);
};

#define CPU_TSC_HZ 2000000000ull /* advertised in CPUID 0x40000010 too */

/* cpu_config.flags */
#define CPU_CFG_EXIT_ON_EXCEPTION 1u /* tests: return CPU_EXIT_EXCEPTION instead
                                        of delivering exceptions through the IDT */
#define CPU_CFG_TRACE_INT 2u         /* debug hook gets a line per exception/
                                        interrupt, like qemu -d int ("v=0e e=0002
                                        cpl=0 IP=... CR2=..."), plus the GPRs */
#define CPU_CFG_JIT 4u               /* translate blocks to host code (jit.c) ... */
#define CPU_CFG_NO_JIT 8u            /* ... or not; neither: EMBER_JIT=on|off, else
                                        the engine's default */

struct cpu_config {
    const struct guest_mem *mem; /* RAM; anything else is MMIO */
    struct cpu_ops ops;
    unsigned vcpu_id;            /* initial APIC ID (CPUID) and TSC_AUX */
    unsigned flags;              /* CPU_CFG_* */
    unsigned jit_hot;            /* translator: a block is translated on its
                                    jit_hot-th entry (1-65535; 0: the default,
                                    at once with CPU_CFG_JIT) */
};

/* Event bits for cpu_signal (any thread). Checked at block ends. */
#define CPU_EVENT_INTERRUPT 1u /* an interrupt may be pending: poll intr() */
#define CPU_EVENT_NMI 2u       /* deliver an NMI (vector 2) */
#define CPU_EVENT_KICK 4u      /* return CPU_EXIT_INTERRUPTED soon */
#define CPU_EVENT_TLB_FLUSH 8u /* flush TLB and block caches (e.g. after the
                                  VMM changed guest page tables or code) */

enum cpu_exit_reason {
    CPU_EXIT_INTERRUPTED = 1, /* KICK, or the instruction limit was reached */
    CPU_EXIT_HALT,            /* HLT with no deliverable interrupt: sleep until
                                 an interrupt or NMI is signalled, call again */
    CPU_EXIT_SHUTDOWN,        /* triple fault */
    CPU_EXIT_ERROR,           /* internal engine error: 'detail' says what */
    CPU_EXIT_EXCEPTION,       /* only with CPU_CFG_EXIT_ON_EXCEPTION */
    CPU_EXIT_DEBUG,           /* a debugger's stop (cpu_set_debug): 'vector' 3
                                 at an INT3 (rip points at it), 1 after a step
                                 (dr6 BS) or before an instruction breakpoint
                                 (dr6 bit n for address n) */
};

struct cpu_exit {
    int reason;               /* enum cpu_exit_reason */
    uint64_t rip;             /* RIP of the instruction concerned */
    /* CPU_EXIT_EXCEPTION: the exception (RIP already points where the guest
     * would see it: at the faulting instruction, or after a trap). */
    uint8_t vector;
    bool has_error_code;
    uint32_t error_code;
    uint64_t cr2;             /* #PF only */
    uint64_t dr6;             /* CPU_EXIT_DEBUG */
    /* CPU_EXIT_ERROR: instruction bytes at rip (as far as readable) */
    uint8_t insn[15];
    unsigned insn_len;
    char detail[256];
};

/* Creates a vCPU in the state after RESET/INIT except that it is already
 * in long mode only if the caller sets sregs accordingly (boot_load does).
 * Returns NULL on allocation failure or an invalid config. */
struct cpu *cpu_create(const struct cpu_config *cfg);
void cpu_destroy(struct cpu *cpu);
/* Back to the state cpu_create left, keeping its memory and configuration
 * (guest memory, ops, flags, CPUID); statistics start again from zero. */
void cpu_reset(struct cpu *cpu);

/* Runs the vCPU until one of the exits above. Returns exit->reason. */
int cpu_run(struct cpu *cpu, struct cpu_exit *exit);

/* Any thread: OR 'bits' (CPU_EVENT_*) into the event word. */
void cpu_signal(struct cpu *cpu, unsigned bits);

/* Any thread: a device (DMA) or the VMM wrote guest RAM [gpa, gpa+len).
 * Cheap when the range holds no decoded code; otherwise the blocks there
 * are invalidated before the vCPU executes its next block. */
void cpu_notify_write(struct cpu *cpu, uint64_t gpa, uint64_t len);

/* Another vCPU's decoded code appeared on ('on') or left the guest-physical
 * page 'page': this vCPU's writes there go through ops.code_written. Only
 * while this vCPU is not inside cpu_run (vCPUs taking turns). */
void cpu_foreign_code(struct cpu *cpu, uint64_t page, bool on);

/* Stop cpu_run with CPU_EXIT_INTERRUPTED once 'count' more instructions
 * have retired (checked at block ends, so it may overshoot by < 64).
 * 0 = no limit. For tests and the runner. */
void cpu_set_insn_limit(struct cpu *cpu, uint64_t count);

/* --- state ----------------------------------------------------------------- */
void cpu_get_regs(struct cpu *cpu, struct x86_regs *regs);
void cpu_set_regs(struct cpu *cpu, const struct x86_regs *regs);
void cpu_get_sregs(struct cpu *cpu, struct x86_sregs *sregs);
/* Returns 0, or -EINVAL if the state is one the engine cannot run
 * (e.g. not long mode): the vCPU is left unchanged then. */
int cpu_set_sregs(struct cpu *cpu, const struct x86_sregs *sregs);

/* MSRs the engine owns (EFER, STAR, LSTAR, CSTAR, SFMASK, FS/GS/KERNEL_GS
 * base, TSC, TSC_AUX, TSC_ADJUST, PAT, MTRRs, SYSENTER_*, MISC_ENABLE, ...).
 * Others are forwarded to ops.msr. Returns 0 or -ENOENT/-EINVAL. */
int cpu_get_msr(struct cpu *cpu, uint32_t index, uint64_t *value);
int cpu_set_msr(struct cpu *cpu, uint32_t index, uint64_t value);
/* Indexes of the engine-owned MSRs worth saving (for snapshots). */
size_t cpu_msr_list(uint32_t *indexes, size_t max);

/* The 512-byte FXSAVE image (64-bit format) of the x87/MMX/SSE state. */
void cpu_get_fxsave(struct cpu *cpu, uint8_t image[512]);
int cpu_set_fxsave(struct cpu *cpu, const uint8_t image[512]); /* -EINVAL: bad MXCSR */

struct cpu_debugregs {
    uint64_t dr[4], dr6, dr7;
};
void cpu_get_debugregs(struct cpu *cpu, struct cpu_debugregs *dr);
void cpu_set_debugregs(struct cpu *cpu, const struct cpu_debugregs *dr);

/* A debugger's control of the vCPU (a GDB stub), separate from the
 * guest's own debug registers. Breakpoints and steps bypass the block
 * cache's chaining: while CPU_DEBUG_STEP or a hardware breakpoint or
 * watchpoint is set the engine runs one instruction at a time. */
#define CPU_DEBUG_STEP 1u  /* stop after one instruction */
#define CPU_DEBUG_SW_BP 2u /* INT3 stops instead of reaching the guest */
#define CPU_DEBUG_HW_BP 4u /* the enabled[n] entries: see 'watch' */
#define CPU_WATCH_EXEC 0u  /* stop before executing addr[n] */
#define CPU_WATCH_WRITE 1u /* stop after an instruction that wrote [addr, addr+len) */
#define CPU_WATCH_RW 3u    /* ... that read or wrote it */
struct cpu_debug {
    unsigned flags;
    uint64_t addr[4];
    bool enabled[4];
    uint8_t watch[4];  /* CPU_WATCH_* */
    uint8_t len[4];    /* bytes watched (1, 2, 4, 8) */
    bool pass_int3; /* the next INT3 reaches the guest (it was the guest's own) */
};
/* Takes effect at the next cpu_run; the first instruction it runs is not
 * checked against the breakpoints (it is where the vCPU stopped). */
void cpu_set_debug(struct cpu *cpu, const struct cpu_debug *dbg);

struct cpu_events_state {
    bool halted;
    bool nmi_pending;
    bool nmi_masked;       /* inside an NMI handler until IRET */
    uint8_t int_shadow;    /* 1: STI shadow, 2: MOV SS/POP SS shadow */
};
void cpu_get_events_state(struct cpu *cpu, struct cpu_events_state *ev);
void cpu_set_events_state(struct cpu *cpu, const struct cpu_events_state *ev);

/* --- CPUID ----------------------------------------------------------------- */
/* The engine's CPUID table (what it implements). Returns 0, or -E2BIG if
 * 'max' entries are too few (*count says how many are needed). */
int cpu_supported_cpuid(struct x86_cpuid_entry *entries, unsigned max, unsigned *count);
/* Install the table CPUID answers from (the VMM patches topology leaves).
 * Feature bits the engine does not implement are cleared. */
int cpu_set_cpuid(struct cpu *cpu, const struct x86_cpuid_entry *entries, unsigned n);

/* --- counters -------------------------------------------------------------- */
struct cpu_stats {
    uint64_t insns;              /* instructions retired */
    uint64_t blocks_built;
    uint64_t blocks_invalidated; /* by stores into code or device writes */
    uint64_t cache_flushes;      /* whole block cache dropped */
    uint64_t tlb_misses;         /* page walks */
    uint64_t tlb_flushes;
    uint64_t exceptions[32];     /* delivered, by vector */
    uint64_t interrupts;         /* external interrupts delivered */
    uint64_t nmis;
    uint64_t pio, mmio;          /* callbacks made */
    uint64_t hostexec;           /* x87/SSE instructions run on host stubs */
    uint64_t dispatches;         /* blocks entered from the run loop (a lookup) */
    uint64_t chained;            /* blocks entered straight from their predecessor */
    uint64_t jit_insns;          /* records the translator turned into host code */
    uint64_t jit_bytes;          /* ... the host code it wrote for them */
    uint64_t jit_executed;       /* instructions run in host code (counted only
                                    with EMBER_JIT_COUNT=1: it costs an add each) */
};
void cpu_get_stats(struct cpu *cpu, struct cpu_stats *stats);

#endif
