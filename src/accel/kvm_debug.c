/* The KVM backend's part in guest debugging: KVM_SET_GUEST_DEBUG for a
 * debugger's breakpoints and steps, and the x87/SSE state in the FXSAVE
 * layout the rest of ember uses. */
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm_internal.h"
#include "arch/x86_64/fxsave.h"


int kvm_vcpu_get_fpu(struct accel_vcpu *vcpu, uint8_t fx[512])
{
    struct kvm_fpu f;
    int ret = kvm_ioctl_err(vcpu->fd, KVM_GET_FPU, &f, "GET_FPU");
    if (ret)
        return ret;
    memset(fx, 0, 512);
    memcpy(fx + FX_FCW, &f.fcw, 2);
    memcpy(fx + FX_FSW, &f.fsw, 2);
    fx[FX_FTW] = f.ftwx;
    memcpy(fx + FX_FOP, &f.last_opcode, 2);
    memcpy(fx + FX_FIP, &f.last_ip, 8);
    memcpy(fx + FX_FDP, &f.last_dp, 8);
    memcpy(fx + FX_MXCSR, &f.mxcsr, 4);
    for (unsigned i = 0; i < 8; i++)
        memcpy(fx + FX_ST0 + 16 * i, f.fpr[i], 16);
    memcpy(fx + FX_XMM0, f.xmm, sizeof(f.xmm));
    return 0;
}

int kvm_vcpu_set_fpu(struct accel_vcpu *vcpu, const uint8_t fx[512])
{
    struct kvm_fpu f;
    memset(&f, 0, sizeof(f));
    memcpy(&f.fcw, fx + FX_FCW, 2);
    memcpy(&f.fsw, fx + FX_FSW, 2);
    f.ftwx = fx[FX_FTW];
    memcpy(&f.last_opcode, fx + FX_FOP, 2);
    memcpy(&f.last_ip, fx + FX_FIP, 8);
    memcpy(&f.last_dp, fx + FX_FDP, 8);
    memcpy(&f.mxcsr, fx + FX_MXCSR, 4);
    for (unsigned i = 0; i < 8; i++)
        memcpy(f.fpr[i], fx + FX_ST0 + 16 * i, 16);
    memcpy(f.xmm, fx + FX_XMM0, sizeof(f.xmm));
    return kvm_ioctl_err(vcpu->fd, KVM_SET_FPU, &f, "SET_FPU");
}

int kvm_vcpu_set_debug(struct accel_vcpu *vcpu, const struct accel_debug *dbg)
{
    struct kvm_guest_debug g;
    memset(&g, 0, sizeof(g));
    if (dbg->flags) {
        g.control = KVM_GUESTDBG_ENABLE;
        if (dbg->flags & ACCEL_DEBUG_SINGLESTEP)
            g.control |= KVM_GUESTDBG_SINGLESTEP;
        if (dbg->flags & ACCEL_DEBUG_SW_BP)
            g.control |= KVM_GUESTDBG_USE_SW_BP;
        if (dbg->flags & ACCEL_DEBUG_INJECT_BP)
            g.control |= KVM_GUESTDBG_INJECT_BP;
        if (dbg->flags & ACCEL_DEBUG_HW_BP) {
            g.control |= KVM_GUESTDBG_USE_HW_BP;
            for (unsigned n = 0; n < 4; n++)
                g.arch.debugreg[n] = dbg->dr[n];
            g.arch.debugreg[7] = dbg->dr7;
        }
    }
    return kvm_ioctl_err(vcpu->fd, KVM_SET_GUEST_DEBUG, &g, "SET_GUEST_DEBUG");
}

void kvm_debug_exit(const struct kvm_run *run, struct accel_exit *exit)
{
    exit->kind = ACCEL_EXIT_DEBUG;
    exit->debug.vector = (uint8_t)run->debug.arch.exception;
    exit->debug.pc = run->debug.arch.pc;
    exit->debug.dr6 = run->debug.arch.dr6;
}
