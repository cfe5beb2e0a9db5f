//! Asymmetric memory barriers: a fast side that costs nothing at run time and a slow side
//! that makes the pair a full (`SeqCst`) fence pairing, across processes.
//!
//! A wake-up protocol is a Dekker pairing: the side that publishes (a push storing its
//! element's stamp) must then read whether anyone sleeps, and the side about to sleep must
//! announce itself and then re-read the published word. Each needs a store-load fence, and
//! on the publishing side, the fast path of every push and pop, that fence costs as much
//! as the rest of the operation. Here the publisher only keeps the compiler from reordering
//! ([`light`]), and the sleeper, already on its way into the kernel, runs
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` ([`heavy`]): the kernel makes every thread
//! of every registered process pass a full barrier while the call runs (a thread not
//! running has passed one at its last context switch). So for any publisher, either its
//! store precedes its barrier (and the sleeper's re-read after the call sees it) or its
//! load follows it (and sees the announcement the sleeper made before the call): a store
//! and a load each side of a fence, the pairing Linux's RCU and folly's
//! `asymmetricHeavyBarrier` use.
//!
//! A process registers ([`register`], done by every attach) before it first uses the fast
//! side; where the kernel refuses (no membarrier, a seccomp filter), that process's light
//! side is a full fence instead, which pairs with any heavy side. The heavy side always
//! issues a full fence and the membarrier, registered or not (other processes may be);
//! where the kernel lacks the command no process could register, so every light side is a
//! full fence. Only a membarrier that fails for the sleeper (a seccomp filter that refuses
//! it to the sleeper and not to the publishers, or the kernel's ENOMEM) could break the
//! pairing for that wait; such a sleeper is still woken by its bounded sleep (every sleep
//! of the structures lasts at most `CHECK_INTERVAL`, 10 ms).
//!
//! Registration survives `fork` (the child's memory map inherits it, and so does the
//! process-global flag) and is lost on `exec` (and so is the flag: the new program
//! registers when it attaches).
//!
//! Under loom both sides are `SeqCst` fences: the models check the protocol, with the
//! kernel's guarantee standing in for the fences.

use crate::sync::{fence, Ordering};

#[cfg(not(loom))]
use std::sync::atomic::AtomicU8;

/// This process's state: unknown, registered (light side free), or refused (light side a
/// fence).
#[cfg(not(loom))]
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
#[cfg(not(loom))]
const UNKNOWN: u8 = 0;
#[cfg(not(loom))]
const REGISTERED: u8 = 1;
#[cfg(not(loom))]
const REFUSED: u8 = 2;

// From <linux/membarrier.h>.
#[cfg(not(loom))]
const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
#[cfg(not(loom))]
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_long = 1 << 1;
#[cfg(not(loom))]
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_long = 1 << 2;

#[cfg(not(loom))]
fn membarrier(command: libc::c_long) -> libc::c_long {
    // SAFETY: membarrier takes two integers and touches no memory of ours; an unknown or
    // refused command fails with an errno.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            command,
            0 as libc::c_long,
            0 as libc::c_int,
        )
    }
}

/// Registers this process for the fast [`light`] side, once (later calls return at once).
/// Where the kernel refuses, the light side stays a full fence.
pub fn register() {
    #[cfg(not(loom))]
    {
        // Relaxed: the state only chooses between two correct light sides; the registration
        // itself completed (a system call) before REGISTERED is stored.
        if STATE.load(Ordering::Relaxed) != UNKNOWN {
            return;
        }
        let supported = membarrier(MEMBARRIER_CMD_QUERY);
        let registered = supported >= 0
            && supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED != 0
            && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
        // Relaxed: as above. Two threads registering at once both store the same answer.
        STATE.store(
            if registered { REGISTERED } else { REFUSED },
            Ordering::Relaxed,
        );
    }
}

/// The publisher's side: orders a store before a later load, paired with [`heavy`].
#[inline]
pub fn light() {
    #[cfg(not(loom))]
    {
        // Relaxed: see `register`.
        if STATE.load(Ordering::Relaxed) == REGISTERED {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// The sleeper's side: a full fence here and, through the kernel, in every registered
/// process; pairs with [`light`] and with any `SeqCst` fence.
pub fn heavy() {
    fence(Ordering::SeqCst);
    // Whether or not this process registered: other processes may have. Where the kernel
    // lacks the command it fails at once, and then no process could register.
    #[cfg(not(loom))]
    let _ = membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
}
