/* A small 64-bit guest for engine tests: RAM at GPA 0, 4-level page tables
 * built by the test, a GDT/IDT/TSS, and a vCPU created on it. Header-only. */
#ifndef EMBER_TESTS_ENGINE_HARNESS_H
#define EMBER_TESTS_ENGINE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/cpu.h"
#include "mem/guest_mem.h"

#define H_PTE_P 1ull
#define H_PTE_W 2ull
#define H_PTE_U 4ull
#define H_PTE_PS 0x80ull
#define H_PTE_G 0x100ull
#define H_PTE_NX (1ull << 63)

struct harness {
    struct guest_mem gm;
    uint8_t *ram;
    uint64_t ram_size;
    uint64_t pt_next;   /* next free page-table page (GPA) */
    uint64_t cr3;
    struct cpu *cpu;
};

static inline void *h_ptr(struct harness *h, uint64_t gpa)
{
    return h->ram + gpa;
}

static inline uint64_t h_alloc_pt(struct harness *h)
{
    uint64_t p = h->pt_next;
    h->pt_next += 4096;
    memset(h_ptr(h, p), 0, 4096);
    return p;
}

/* Map one page (4K, or 2M with H_PTE_PS) VA -> GPA. Upper levels are
 * created present, writable, user. */
static inline void h_map(struct harness *h, uint64_t va, uint64_t gpa, uint64_t flags)
{
    uint64_t table = h->cr3;
    int leaf_level = (flags & H_PTE_PS) ? 1 : 0;
    for (int level = 3; level > leaf_level; level--) {
        uint64_t *e = (uint64_t *)h_ptr(h, table) + ((va >> (12 + 9 * level)) & 511);
        if (!(*e & H_PTE_P))
            *e = h_alloc_pt(h) | H_PTE_P | H_PTE_W | H_PTE_U;
        table = *e & 0x000ffffffffff000ull;
    }
    uint64_t *e = (uint64_t *)h_ptr(h, table) + ((va >> (12 + 9 * leaf_level)) & 511);
    *e = gpa | flags | H_PTE_P;
}

static inline uint64_t *h_pte(struct harness *h, uint64_t va)
{
    uint64_t table = h->cr3;
    for (int level = 3; level > 0; level--) {
        uint64_t *e = (uint64_t *)h_ptr(h, table) + ((va >> (12 + 9 * level)) & 511);
        if (!(*e & H_PTE_P))
            return NULL;
        if (*e & H_PTE_PS)
            return e;
        table = *e & 0x000ffffffffff000ull;
    }
    return (uint64_t *)h_ptr(h, table) + ((va >> 12) & 511);
}

static inline uint64_t h_desc(uint32_t base, uint32_t limit, uint16_t flags)
{
    /* flags: access byte | (G D/B L AVL nibble << 12) */
    return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
           ((uint64_t)(limit & 0xf0000u) << 32) | ((uint64_t)(base & 0xffffffu) << 16) |
           (limit & 0xffffu);
}

static inline struct x86_segment h_seg(uint16_t sel, uint64_t d)
{
    uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
    bool g = (d >> 55) & 1;
    return (struct x86_segment){
        .base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000),
        .limit = g ? (limit << 12) | 0xfff : limit,
        .selector = sel,
        .type = (d >> 40) & 0xf,
        .s = (d >> 44) & 1,
        .dpl = (d >> 45) & 3,
        .present = (d >> 47) & 1,
        .avl = (d >> 52) & 1,
        .l = (d >> 53) & 1,
        .db = (d >> 54) & 1,
        .g = g,
    };
}

/* 64-bit interrupt/trap gate */
static inline void h_gate(struct harness *h, uint64_t idt_gpa, unsigned vec, uint64_t target,
                          uint16_t sel, unsigned dpl, unsigned ist, bool trap)
{
    uint64_t *g = (uint64_t *)h_ptr(h, idt_gpa + vec * 16);
    g[0] = (target & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)(ist & 7) << 32) |
           ((uint64_t)(trap ? 0xf : 0xe) << 40) | ((uint64_t)dpl << 45) | (1ull << 47) |
           ((target & 0xffff0000ull) << 32);
    g[1] = target >> 32;
}

static inline int h_init(struct harness *h, uint64_t ram_size, uint64_t pt_base)
{
    memset(h, 0, sizeof(*h));
    h->ram_size = ram_size;
    h->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (h->ram == MAP_FAILED)
        return -1;
    if (gm_add_region(&h->gm, 0, ram_size, h->ram))
        return -1;
    h->pt_next = pt_base;
    h->cr3 = h_alloc_pt(h);
    return 0;
}

static inline void h_free(struct harness *h)
{
    if (h->cpu)
        cpu_destroy(h->cpu);
    munmap(h->ram, h->ram_size);
}

#endif
