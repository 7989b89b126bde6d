/* x86 CPU state as ember describes it, independent of the CPU backend. */
#ifndef EMBER_ARCH_X86_64_CPU_STATE_H
#define EMBER_ARCH_X86_64_CPU_STATE_H

#include <stdbool.h>
#include <stdint.h>

struct x86_segment {
    uint64_t base;
    uint32_t limit;  /* in bytes, already scaled by granularity */
    uint16_t selector;
    uint8_t type;
    bool present, s, l, g, avl, unusable;
    uint8_t dpl, db;
};

struct x86_dtable {
    uint64_t base;
    uint16_t limit;
};

struct x86_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
};

struct x86_sregs {
    struct x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct x86_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

struct x86_cpuid_entry {
    uint32_t function, index, flags;  /* flags: X86_CPUID_FLAG_* */
    uint32_t eax, ebx, ecx, edx;
};
#define X86_CPUID_FLAG_INDEXED 1u  /* 'index' (ECX input) is significant */

struct x86_msr {
    uint32_t index;
    uint64_t value;
};

#define MSR_IA32_TSC 0x10

#endif
