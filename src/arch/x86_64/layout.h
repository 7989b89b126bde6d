/* Guest-physical memory map of an ember x86-64 VM. */
#ifndef EMBER_ARCH_X86_64_LAYOUT_H
#define EMBER_ARCH_X86_64_LAYOUT_H

/* Low memory: boot structures, all below the EBDA. */
#define LAYOUT_GDT 0x500ull
#define LAYOUT_IDT 0x580ull           /* empty IDT (limit 0) */
#define LAYOUT_PVH_START_INFO 0x6000ull
#define LAYOUT_PVH_MODLIST 0x6040ull  /* one module: the initrd */
#define LAYOUT_PVH_MEMMAP 0x6080ull   /* up to E820_MAX_ENTRIES entries */
#define LAYOUT_ZERO_PAGE 0x7000ull    /* Linux boot_params */
#define LAYOUT_BOOT_STACK 0x8ff0ull
#define LAYOUT_PML4 0x9000ull
#define LAYOUT_PDPT 0xa000ull
#define LAYOUT_PD 0xb000ull           /* four pages: identity map of 0-4 GiB */
#define LAYOUT_CMDLINE 0x20000ull
#define LAYOUT_CMDLINE_MAX 0x10000ull
#define LAYOUT_EBDA 0x9fc00ull        /* RAM ends here in the low 640 KiB */
#define LAYOUT_LOW_RAM_END 0xa0000ull /* start of the VGA hole */
#define LAYOUT_ACPI 0xe0000ull        /* RSDP and tables, in the BIOS area */
#define LAYOUT_ACPI_SIZE 0x1d000ull
/* The rest of the BIOS area (reserved in the e820 map): the multiprocessor
 * wakeup mailbox, and the identity map (1 GiB pages, the first 512 GiB)
 * the APs start with when they wake through it. */
#define LAYOUT_AP_MAILBOX 0xfd000ull
#define LAYOUT_AP_PML4 0xfe000ull
#define LAYOUT_AP_PDPT 0xff000ull
#define LAYOUT_HIGH_RAM 0x100000ull   /* 1 MiB */
#define LAYOUT_KERNEL_32BIT_LOAD 0x100000ull

/* The 32-bit hole: RAM above it moves to 4 GiB. Its first 16 MiB hold
 * platform MMIO devices as Firecracker places them (the boot timer at its
 * start, then virtio-mmio devices 4 KiB apart); PCI BARs take the rest. */
#define LAYOUT_PCI_HOLE_START 0xc0000000ull
#define LAYOUT_BOOT_TIMER 0xc0000000ull      /* Firecracker's BOOT_DEVICE_MEM_START */
#define LAYOUT_VIRTIO_MMIO 0xc0001000ull     /* first virtio-mmio device */
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ull    /* each device's window */
#define LAYOUT_VIRTIO_MMIO_END 0xc1000000ull
#define LAYOUT_PCI_MMIO_START 0xc1000000ull
#define LAYOUT_PCI_MMIO_END 0xfebfffffull /* last byte for 32-bit BARs */
#define LAYOUT_IOAPIC 0xfec00000ull
#define LAYOUT_LAPIC 0xfee00000ull
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ull /* one page, Intel only */
#define LAYOUT_KVM_TSS 0xfeffd000ull          /* three pages, Intel only */
#define LAYOUT_4GIB 0x100000000ull

/* Port I/O. */
#define PORT_I8042_DATA 0x60
#define PORT_I8042_CMD 0x64
#define PORT_RTC 0x70
#define PORT_POST 0x80
#define PORT_PVPANIC 0x505
#define PORT_ACPI_PM1_EVT 0x600
#define PORT_ACPI_PM1_CNT 0x604
#define PORT_ACPI_PM_TMR 0x608
#define PORT_PCI_CONFIG_ADDRESS 0xcf8
#define PORT_PCI_CONFIG_DATA 0xcfc
#define PORT_COM1 0x3f8

/* ISA interrupts (GSI numbers equal ISA IRQ numbers except IRQ 0 -> GSI 2). */
#define IRQ_KEYBOARD 1
#define IRQ_COM1 4
#define IRQ_RTC 8
#define IRQ_ACPI_SCI 9
#define IRQ_MOUSE 12
#define IOAPIC_PINS 24
/* PCI INTx: slot and pin (0 = INTA) to an IOAPIC pin, as the DSDT's _PRT
 * describes; level-triggered, shared among slots. */
#define PCI_INTX_GSI(slot, pin) (16u + (((slot) + (pin)) & 7u))
#define PCI_SLOT_BAR_BASE(slot) (LAYOUT_PCI_MMIO_START + (uint64_t)(slot) * 0x10000ull)

#endif
