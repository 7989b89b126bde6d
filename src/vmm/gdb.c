#include "vmm/gdb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "arch/x86_64/pagewalk.h"
#include "debug/gdbstub.h"
#include "util/log.h"
#include "util/util.h"

struct gdb_pending {
    bool stopped;          /* the vCPU reported a debug exit, not yet handled */
    struct accel_exit exit;
    bool inject_bp;        /* its INT3 was the guest's own: deliver it at resume */
};

struct vm_gdb {
    struct vm *vm;
    struct gdbstub stub;
    pthread_mutex_t lock;  /* pending[], written by vCPU threads */
    struct gdb_pending *pending;
    int event_fd;
    bool running;          /* the debugger let the guest run */
    struct accel_debug dbg; /* what the debugger asked at the last resume */
};

/* --- from the vCPU threads ---------------------------------------------------- */

static void gdb_on_debug_stop(void *ctx, unsigned index, const struct accel_exit *exit)
{
    struct vm_gdb *g = ctx;
    pthread_mutex_lock(&g->lock);
    g->pending[index].stopped = true;
    g->pending[index].exit = *exit;
    pthread_mutex_unlock(&g->lock);
    eventfd_signal(g->event_fd);
}

/* --- the target interface ---------------------------------------------------------- */

static void gdb_stop(void *ctx)
{
    struct vm_gdb *g = ctx;
    if (vm_pause(g->vm))
        log_warn("gdb: cannot stop the VM: %s", err_msg());
    g->running = false;
}

/* The first vCPU with a stop the debugger must hear of (-1: none); guest
 * INT3s that are not the debugger's are marked to be delivered instead. */
static int take_pending_stop(struct vm_gdb *g, struct accel_exit *exit)
{
    int found = -1;
    pthread_mutex_lock(&g->lock);
    for (unsigned i = 0; i < g->vm->nr_vcpus && found < 0; i++) {
        struct gdb_pending *p = &g->pending[i];
        if (!p->stopped)
            continue;
        p->stopped = false;
        if (p->exit.debug.vector == 3 && !gdbstub_owns_breakpoint(&g->stub, p->exit.debug.pc)) {
            p->inject_bp = true;
            continue;
        }
        *exit = p->exit;
        found = (int)i;
    }
    pthread_mutex_unlock(&g->lock);
    return found;
}

static int apply_debug(struct vm_gdb *g, const struct accel_debug *dbg, int step)
{
    const struct accel_ops *accel = g->vm->accel;
    for (unsigned i = 0; i < g->vm->nr_vcpus; i++) {
        struct accel_debug mine = *dbg;
        if ((int)i == step)
            mine.flags |= ACCEL_DEBUG_SINGLESTEP;
        pthread_mutex_lock(&g->lock);
        if (g->pending[i].inject_bp)
            mine.flags |= ACCEL_DEBUG_INJECT_BP | ACCEL_DEBUG_SW_BP;
        g->pending[i].inject_bp = false;
        pthread_mutex_unlock(&g->lock);
        int ret = accel->vcpu_set_debug(g->vm->vcpus[i].accel_vcpu, &mine);
        if (ret)
            return err_prefix(ret, "vCPU %u", i);
    }
    return 0;
}

static int gdb_resume(void *ctx, const struct accel_debug *dbg, int step)
{
    struct vm_gdb *g = ctx;
    struct accel_exit exit;
    /* a stop that came in while the guest was stopped is reported first */
    int cpu = take_pending_stop(g, &exit);
    if (cpu >= 0) {
        gdbstub_stopped(&g->stub, (unsigned)cpu, GDB_STOP_DEBUG, &exit);
        return 0;
    }
    g->dbg = *dbg;
    int ret = apply_debug(g, dbg, step);
    if (!ret)
        ret = vm_debug_resume(g->vm, step);
    g->running = !ret;
    return ret;
}

/* The event loop hears of debug stops. */
static void gdb_on_event(void *ctx, uint32_t events)
{
    struct vm_gdb *g = ctx;
    (void)events;
    eventfd_drain(g->event_fd);
    if (!g->running)
        return; /* kept for the next resume */
    gdb_stop(g);
    struct accel_exit exit;
    int cpu = take_pending_stop(g, &exit);
    if (cpu >= 0) {
        gdbstub_stopped(&g->stub, (unsigned)cpu, GDB_STOP_DEBUG, &exit);
        return;
    }
    /* only the guest's own INT3s: give them to it and run on */
    if (apply_debug(g, &g->dbg, -1) || vm_debug_resume(g->vm, -1))
        log_warn("gdb: cannot resume the guest: %s", err_msg());
    else
        g->running = true;
}

static int gdb_get_regs(void *ctx, unsigned cpu, struct gdb_x86_state *st)
{
    struct vm_gdb *g = ctx;
    if (cpu >= g->vm->nr_vcpus)
        return err_set(-EINVAL, "no vCPU %u", cpu);
    const struct accel_ops *a = g->vm->accel;
    struct accel_vcpu *v = g->vm->vcpus[cpu].accel_vcpu;
    int ret = a->vcpu_get_regs(v, &st->regs);
    if (!ret)
        ret = a->vcpu_get_sregs(v, &st->sregs);
    if (!ret)
        ret = a->vcpu_get_fpu(v, st->fxsave);
    return ret;
}

static int gdb_set_regs(void *ctx, unsigned cpu, const struct gdb_x86_state *st)
{
    struct vm_gdb *g = ctx;
    if (cpu >= g->vm->nr_vcpus)
        return err_set(-EINVAL, "no vCPU %u", cpu);
    const struct accel_ops *a = g->vm->accel;
    struct accel_vcpu *v = g->vm->vcpus[cpu].accel_vcpu;
    int ret = a->vcpu_set_regs(v, &st->regs);
    return ret ? ret : a->vcpu_set_fpu(v, st->fxsave);
}

/* Each page of [va, va+len) in turn: 'fn' on its guest-physical piece. */
static int for_each_piece(struct vm_gdb *g, unsigned cpu, uint64_t va, size_t len,
                          int (*fn)(struct vm_gdb *g, uint64_t gpa, size_t off, size_t n,
                                    void *arg),
                          void *arg)
{
    struct x86_sregs sregs;
    if (cpu >= g->vm->nr_vcpus ||
        g->vm->accel->vcpu_get_sregs(g->vm->vcpus[cpu].accel_vcpu, &sregs))
        return -EFAULT;
    const struct pagewalk_ctx pw = {sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer};
    for (size_t done = 0; done < len;) {
        uint64_t gpa, contiguous;
        if (pagewalk_translate(&g->vm->mem, &pw, va + done, &gpa, &contiguous))
            return -EFAULT;
        size_t n = (size_t)MIN(contiguous, (uint64_t)(len - done));
        int ret = fn(g, gpa, done, n, arg);
        if (ret)
            return ret;
        done += n;
    }
    return 0;
}

static int check_piece(struct vm_gdb *g, uint64_t gpa, size_t off, size_t n, void *arg)
{
    (void)off, (void)arg;
    return gm_range_valid(&g->vm->mem, gpa, n) ? 0 : -EFAULT;
}

static int read_piece(struct vm_gdb *g, uint64_t gpa, size_t off, size_t n, void *arg)
{
    return gm_read(&g->vm->mem, gpa, (uint8_t *)arg + off, n) ? -EFAULT : 0;
}

static int write_piece(struct vm_gdb *g, uint64_t gpa, size_t off, size_t n, void *arg)
{
    return gm_write(&g->vm->mem, gpa, (const uint8_t *)arg + off, n) ? -EFAULT : 0;
}

static int gdb_read_mem(void *ctx, unsigned cpu, uint64_t va, void *buf, size_t len)
{
    struct vm_gdb *g = ctx;
    int ret = for_each_piece(g, cpu, va, len, check_piece, NULL);
    return ret ? ret : for_each_piece(g, cpu, va, len, read_piece, buf);
}

static int gdb_write_mem(void *ctx, unsigned cpu, uint64_t va, const void *buf, size_t len)
{
    struct vm_gdb *g = ctx;
    /* all of it mapped, or nothing written */
    int ret = for_each_piece(g, cpu, va, len, check_piece, NULL);
    return ret ? ret : for_each_piece(g, cpu, va, len, write_piece, (void *)buf);
}

static void gdb_kill(void *ctx)
{
    struct vm_gdb *g = ctx;
    vm_request_stop(g->vm, VM_STOP_USER_QUIT, "killed from the debugger");
}

static const struct gdb_target_ops gdb_target_ops = {
    .stop = gdb_stop,
    .resume = gdb_resume,
    .get_regs = gdb_get_regs,
    .set_regs = gdb_set_regs,
    .read_mem = gdb_read_mem,
    .write_mem = gdb_write_mem,
    .kill = gdb_kill,
};

/* --- life ----------------------------------------------------------------------- */

int vm_gdb_create(struct vm *vm, const char *address, bool wait, struct vm_gdb **out)
{
    if (!vm->accel->vcpu_set_debug)
        return err_set(-EOPNOTSUPP, "--gdb: the %s backend cannot debug", vm->accel->name);
    struct vm_gdb *g = calloc(1, sizeof(*g));
    if (!g || !(g->pending = calloc(vm->nr_vcpus, sizeof(*g->pending)))) {
        free(g);
        return err_set(-ENOMEM, "out of memory");
    }
    g->vm = vm;
    g->event_fd = -1;
    pthread_mutex_init(&g->lock, NULL);
    const struct gdb_target target = {&gdb_target_ops, g, vm->nr_vcpus,
                                      (vm->accel->caps & ACCEL_CAP_WATCHPOINTS) != 0};
    int ret = (g->event_fd = eventfd_create()) < 0 ? g->event_fd : 0;
    if (!ret && !(ret = evloop_add(vm->loop, g->event_fd, EPOLLIN, gdb_on_event, g)))
        ret = gdbstub_init(&g->stub, address, vm->loop, &target, wait);
    if (ret) {
        if (g->event_fd >= 0) {
            evloop_remove(vm->loop, g->event_fd);
            close(g->event_fd);
        }
        pthread_mutex_destroy(&g->lock);
        free(g->pending);
        free(g);
        return ret;
    }
    g->running = !wait;
    vm->debug_stop = gdb_on_debug_stop;
    vm->debug_ctx = g;
    *out = g;
    return 0;
}

void vm_gdb_vm_ended(struct vm_gdb *g, int status)
{
    if (g)
        gdbstub_vm_ended(&g->stub, status);
}

void vm_gdb_lift_breakpoints(struct vm_gdb *g, bool lift)
{
    if (g)
        gdbstub_lift_breakpoints(&g->stub, lift);
}

void vm_gdb_destroy(struct vm_gdb *g)
{
    if (!g)
        return;
    g->vm->debug_stop = NULL;
    gdbstub_destroy(&g->stub);
    evloop_remove(g->vm->loop, g->event_fd);
    close(g->event_fd);
    pthread_mutex_destroy(&g->lock);
    free(g->pending);
    free(g);
}
