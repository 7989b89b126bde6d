/* KVM_CREATE_VM ahead of time, on a thread of its own: the kernel's VM
 * set-up is the longest single step of ember's start-up in a nested host
 * (70–90 ms in the harness's L1, against a few on hardware), and until
 * the kernel's copy into guest memory starts only one thread is busy. */
#include "accel/accel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "accel/hostcheck.h"
#include "accel/kvm_internal.h"

static struct {
    pthread_mutex_t lock;
    pthread_t thread;
    bool started, joined;
    bool check_host;
    int kvm_fd, vm_fd;
} early = {.lock = PTHREAD_MUTEX_INITIALIZER, .kvm_fd = -1, .vm_fd = -1};

/* Only on a host with hardware KVM: on any other the VM would be created
 * for nothing (or, on the PVM module, be a VM of the wrong kind). */
static void *create_early(void *arg)
{
    (void)arg;
    if (early.check_host && hostcheck_classify(&host_default_paths) != HOST_HW_KVM)
        return NULL;
    int kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0)
        return NULL;
    if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        close(kvm_fd);
        return NULL;
    }
    int vm_fd;
    do {
        vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    } while (vm_fd < 0 && errno == EINTR);
    if (vm_fd < 0) {
        close(kvm_fd); /* the VMM's own attempt says why */
        return NULL;
    }
    early.kvm_fd = kvm_fd;
    early.vm_fd = vm_fd;
    return NULL;
}

void accel_kvm_create_early(bool check_host)
{
    pthread_mutex_lock(&early.lock);
    if (!early.started) {
        early.check_host = check_host;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* no signal is this thread's */
        early.started = pthread_create(&early.thread, NULL, create_early, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_mutex_unlock(&early.lock);
}

bool kvm_take_early_vm(int *kvm_fd, int *vm_fd)
{
    pthread_mutex_lock(&early.lock);
    if (early.started && !early.joined) {
        pthread_join(early.thread, NULL);
        early.joined = true;
    }
    bool taken = early.vm_fd >= 0;
    if (taken) {
        *kvm_fd = early.kvm_fd;
        *vm_fd = early.vm_fd;
        early.kvm_fd = early.vm_fd = -1;
    }
    pthread_mutex_unlock(&early.lock);
    return taken;
}
