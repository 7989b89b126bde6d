/* kvmexit: the least a VMM can do per VM exit, as a yardstick. It creates a
 * VM with the raw KVM API, runs a few bytes of real-mode code that write
 * N times to port 0x80 and halt, and times the KVM_RUN loop from the first
 * port exit to the halt:
 *
 *   kvmexit [N]    ->  "kvmexit: N exits in MS ms, NS ns/exit"
 *
 * A benchmark tool; not part of ember. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE 0x10000
#define CODE_AT 0x1000

static void die(const char *what)
{
    fprintf(stderr, "kvmexit: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 100000;
    /* mov $0x80,%dx; mov $n,%ecx; 1: out %al,%dx; dec %ecx; jnz 1b; hlt */
    uint8_t code[] = {0xba, 0x80, 0x00, 0x66, 0xb9, 0, 0, 0, 0, 0xee, 0x66, 0x49, 0x75, 0xfb,
                      0xf4};
    memcpy(code + 5, &n, 4);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        die("KVM_CREATE_VM");
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    if (mem == MAP_FAILED)
        die("mmap");
    memcpy(mem + CODE_AT, code, sizeof(code));
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE,
        .userspace_addr = (uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        die("KVM_SET_USER_MEMORY_REGION");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                               vcpu, 0);
    if (run == MAP_FAILED)
        die("mmap kvm_run");
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        die("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        die("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = CODE_AT, .rflags = 2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        die("KVM_SET_REGS");
    uint32_t exits = 0;
    double start = 0;
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0 && errno != EINTR)
            die("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x80) {
            if (exits++ == 0)
                start = now_ms();
            continue;
        }
        if (run->exit_reason == KVM_EXIT_HLT)
            break;
        fprintf(stderr, "kvmexit: unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    double ms = now_ms() - start;
    printf("kvmexit: %u exits in %.1f ms, %.0f ns/exit\n", exits, ms,
           exits > 1 ? ms * 1e6 / (exits - 1) : 0.0);
    return exits == n ? 0 : 1;
}
