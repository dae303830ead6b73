//! The service queue's completion poller: every transport's two completion
//! channels (Receive CQ, Send CQ) in one epoll set, watched by an idle
//! worker thread itself — no completion thread between the device and the
//! worker that serves the RPC.
//!
//! Why: with a completion thread per CQ, each NULL RPC woke three sleeping
//! threads (the Receive CQ's thread, then the worker it queued the
//! transport for, then the Send CQ's thread), each wake-up costing
//! hundreds of µs to milliseconds in the emulated lab. Here the worker that
//! is idle waits on the channels (as the kernel's svc_recv finds the data
//! the CQ's upcall queued): a Receive wakes one thread, which routes it and
//! serves the RPC, and a Send completion that arrives while workers are
//! busy is routed by the next worker that comes back, waking nobody.
//!
//! The poller role: at most one thread holds it (`try_poller`, never
//! waiting). Its holder takes the channels' events, re-arms each CQ that
//! had one (a Send CQ only while someone waits on it: service_transport.rs),
//! polls it empty and routes the completions exactly as the
//! completion threads did (`ServiceTransport::on_channel_event`: Receives
//! to the transport's receive queue and DATA + enqueue, Sends to the
//! release list only, Reads to the chunk buffers, drain markers finished
//! after what came before them). A worker with nothing to take sleeps in
//! epoll_wait holding the role; others sleep in the service queue's futex.
//! `wake` (an eventfd in the set) brings a sleeping holder back when a
//! transport is queued and no futex sleeper can take it. Workers that wait
//! for a release or for their Reads take the role too when it is free
//! (`ServiceQueue::wait_polling`), so a single worker never waits on
//! completions nobody polls; while every worker is busy the queue's backstop
//! thread (service_backstop.rs) polls every 10 ms if the role is free, which
//! also finishes a closing transport's drain markers (`ServiceQueue::poll_now`).
//!
//! Life: created with its ServiceQueue (owned by it); transports `watch`
//! their channels when created, after they are in the registry, and
//! `unwatch` them in `finish`, before they leave it and their CQs go. An
//! event for a transport no longer registered is dropped.

use crate::error::{Result, VerbsError};
use crate::service_transport::registry;
use crate::sys::last_errno;
use crate::service_queue::futex_wake;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Events taken per epoll_wait: a burst beyond it is taken by the next call.
const EVENTS_PER_WAIT: usize = 64;
/// The eventfd's key in the set (transport keys are below 2^54).
const WAKE_KEY: u64 = u64::MAX;

/// Which of a transport's completion channels an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Receive = 0,
    Send = 1,
}

fn key(transport: u64, channel: Channel) -> u64 {
    transport << 1 | channel as u64
}

/// One epoll set over the completion channels of a queue's transports.
pub struct ServiceCompletions {
    epoll: i32,
    wake_fd: i32,
    /// The poller role is taken.
    held: AtomicBool,
    /// The role's holder sleeps (or is about to) in epoll_wait.
    sleeping: AtomicBool,
    /// How long the holder keeps polling an empty set before it sleeps:
    /// the largest `busy_poll` of the transports watched.
    busy_poll_micros: AtomicU64,
    /// Channels in the set (the backstop sleeps while there are none).
    watched: AtomicU32,
}

impl ServiceCompletions {
    pub fn new() -> Result<ServiceCompletions> {
        // SAFETY: plain syscalls; both descriptors are closed in Drop.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(VerbsError::from_errno(last_errno(), "epoll_create1"));
        }
        // SAFETY: as above.
        let wake_fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if wake_fd < 0 {
            let errno = last_errno();
            // SAFETY: ours, closed once.
            unsafe { libc::close(epoll) };
            return Err(VerbsError::from_errno(errno, "eventfd"));
        }
        let completions = ServiceCompletions { epoll, wake_fd, held: AtomicBool::new(false), sleeping: AtomicBool::new(false), busy_poll_micros: AtomicU64::new(0), watched: AtomicU32::new(0) };
        completions.add(wake_fd, WAKE_KEY)?;
        Ok(completions)
    }

    /// Watches `fd` (a non-blocking completion channel of `transport`).
    pub fn watch(&self, transport: u64, channel: Channel, fd: i32, busy_poll: Duration) -> Result<()> {
        self.busy_poll_micros.fetch_max(busy_poll.as_micros() as u64, Ordering::Relaxed);
        self.add(fd, key(transport, channel))?;
        if self.watched.fetch_add(1, Ordering::SeqCst) == 0 {
            futex_wake(&self.watched, i32::MAX);
        }
        Ok(())
    }

    /// Stops watching `fd` (before its channel is destroyed).
    pub fn unwatch(&self, fd: i32) {
        // SAFETY: removing a descriptor from our set; ENOENT (never added) is harmless.
        if unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) } == 0 {
            self.watched.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The number of channels watched, as a futex word: the first `watch` wakes its sleepers.
    pub fn watched(&self) -> &AtomicU32 {
        &self.watched
    }

    fn add(&self, fd: i32, key: u64) -> Result<()> {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: key };
        // SAFETY: fd is live; the event is copied by the kernel.
        if unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            return Err(VerbsError::from_errno(last_errno(), "epoll_ctl(ADD)"));
        }
        Ok(())
    }

    /// The poller role, if nobody holds it.
    pub fn try_poller(&self) -> Option<PollerRole<'_>> {
        self.held.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).ok()?;
        Some(PollerRole { completions: self })
    }

    /// True while someone holds the poller role (sequentially consistent:
    /// a worker that counted itself a futex sleeper sleeps only if the role is held).
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Brings the role's holder out of epoll_wait if it sleeps there. The
    /// caller changed what the holder's `may_sleep` looks at first
    /// (sequentially consistent on both sides: no lost wake-up).
    pub fn wake(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd.
            unsafe { libc::write(self.wake_fd, (&one as *const u64).cast(), 8) };
        }
    }

    /// Handles the events pending now, or waits up to `timeout` for some.
    /// Returns the channel events handled.
    fn handle(&self, timeout: Duration) -> usize {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
        // Whole milliseconds, rounded up: a wait never ends before its time.
        let timeout_ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: events has room for EVENTS_PER_WAIT entries.
        let count = unsafe { libc::epoll_wait(self.epoll, events.as_mut_ptr(), EVENTS_PER_WAIT as i32, timeout_ms) };
        let mut handled = 0;
        for event in &events[..count.max(0) as usize] {
            let event_key = event.u64;
            if event_key == WAKE_KEY {
                let mut value: u64 = 0;
                // SAFETY: reads 8 bytes into a live u64 (non-blocking: EAGAIN when already read).
                unsafe { libc::read(self.wake_fd, (&mut value as *mut u64).cast(), 8) };
                continue;
            }
            let channel = if event_key & 1 == 0 { Channel::Receive } else { Channel::Send };
            let transport = registry().transports.lock().expect("registry lock").get(&(event_key >> 1)).cloned();
            if let Some(transport) = transport {
                transport.on_channel_event(channel);
                handled += 1;
            }
        }
        handled
    }
}

impl Drop for ServiceCompletions {
    fn drop(&mut self) {
        // SAFETY: ours, closed once.
        unsafe {
            libc::close(self.wake_fd);
            libc::close(self.epoll);
        }
    }
}

/// The poller role, given back when dropped.
pub struct PollerRole<'a> {
    completions: &'a ServiceCompletions,
}

impl PollerRole<'_> {
    /// Routes every completion pending now or, if there is none, keeps
    /// polling for the busy-poll window, then sleeps up to `wait` unless
    /// `may_sleep` says something changed meanwhile (it is asked after the
    /// role is marked sleeping, so `ServiceCompletions::wake` after that
    /// change is not lost). Returns the channel events handled.
    pub fn poll(&self, wait: Duration, may_sleep: impl Fn() -> bool) -> usize {
        let completions = self.completions;
        if wait.is_zero() {
            return completions.handle(Duration::ZERO);
        }
        // No separate look first: epoll_wait returns at once with what is pending (one system call, not two).
        let busy_poll = Duration::from_micros(completions.busy_poll_micros.load(Ordering::Relaxed)).min(wait);
        // The clock only when busy polling: it is a system call into an emulated HPET in the lab.
        let mut spun = Duration::ZERO;
        if !busy_poll.is_zero() {
            let started = Instant::now();
            while started.elapsed() < busy_poll {
                if !may_sleep() {
                    return 0;
                }
                let handled = completions.handle(Duration::ZERO);
                if handled > 0 {
                    return handled;
                }
                // SAFETY: plain syscall: a spinner must not starve rxe's softirq work on a small guest.
                unsafe { libc::sched_yield() };
            }
            spun = started.elapsed();
        }
        completions.sleeping.store(true, Ordering::SeqCst);
        let handled = if may_sleep() { completions.handle(wait.saturating_sub(spun)) } else { 0 };
        completions.sleeping.store(false, Ordering::SeqCst);
        handled
    }
}

impl Drop for PollerRole<'_> {
    fn drop(&mut self) {
        self.completions.held.store(false, Ordering::SeqCst);
    }
}
