//! A completion queue.
//!
//! Life: created on a `Device` by JavaScript, in one of three modes:
//! - threaded: a native completion thread (completion_thread.rs) owns all
//!   polling and hands completions to a sink (JavaScript, in batches, or the
//!   release list);
//! - notified: threaded, but the sink is a `CompletionRing` that wakes
//!   JavaScript once per empty -> non-empty transition; `poll` then drains
//!   the ring and, when it can take the poll lock, polls the CQ itself
//!   behind what the ring held (an owner busy with a burst need not wait
//!   for the thread's wake-up; see completion_thread.rs);
//! - polled: the owner calls `poll`, typically from a dedicated worker thread
//!   that may spin for a bounded time (the lowest-latency path);
//! - owner-notified: created with a channel but no completion thread; the
//!   owner waits on `channel_fd` itself (service_completions.rs, or the
//!   JavaScript thread's event loop: bindings/completion_queue.rs `cqWatch`)
//!   and on each event calls `take_events`, `arm`, then `poll_owned` (or
//!   `route_owned`) until it is empty.
//!
//! Owned by its JavaScript handle; every queue pair using it holds an `Arc`,
//! so it is destroyed only after them. Drop stops and joins the completion
//! thread before destroying the CQ and its channel.

use crate::completion_ring::CompletionRing;
use crate::completion_thread::{CompletionSink, CompletionThread, ThreadOptions};
use crate::device::Device;
use crate::error::{check, Result, VerbsError};
use crate::completion_thread::release_send;
use crate::queue_pair_drain::{self, DrainMarkers};
use crate::release_list::ReleaseList;
use crate::send_queue_account::SendQueueAccount;
use crate::sys;
use crate::wakeup::set_nonblocking;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Largest CQ depth we accept: rxe's limit is far above, but a deeper CQ
/// only hides a consumer that is not keeping up.
pub const CQ_DEPTH_MAX: u32 = 1 << 16;

/// Longest a synchronous `poll` may spin: it blocks its thread's event loop.
pub const POLL_SPIN_MAX: Duration = Duration::from_millis(1000);

/// Empty polls between two `sched_yield` while spinning. Measured in the
/// lab: yielding every 1024 polls still let two spinning processes starve
/// rxe's softirq work into 2-8 ms medians; every 64 kept them at 150-190 µs.
const POLLS_PER_YIELD: u32 = 64;

/// Completions one `ibv_poll_cq` of `route_owned` takes.
const ROUTE_BATCH: usize = 16;

/// A completion queue.
pub struct CompletionQueue {
    raw: *mut sys::ibv_cq,
    channel: *mut sys::ibv_comp_channel,
    device: Arc<Device>,
    depth: u32,
    thread: Mutex<Option<CompletionThread>>,
    ring: OnceLock<Arc<CompletionRing>>,
    markers: Arc<DrainMarkers>,
    account: Arc<OnceLock<Arc<SendQueueAccount>>>,
    /// Notified mode without a release list (whose Sends only the thread
    /// routes): serialises the thread's poll-and-deliver with the owner's
    /// direct polls. Unset: the owner takes only what the ring holds.
    poll_lock: OnceLock<Arc<Mutex<()>>>,
}

// SAFETY: ibv_cq and ibv_comp_channel may be used from any thread; polling
// is done either by the completion thread or by the owner, never both.
unsafe impl Send for CompletionQueue {}
// SAFETY: as above.
unsafe impl Sync for CompletionQueue {}

impl CompletionQueue {
    /// Creates a CQ of at least `depth` entries; with a completion channel
    /// when it will be driven by a completion thread.
    pub fn create(device: &Arc<Device>, depth: u32, threaded: bool) -> Result<CompletionQueue> {
        if depth == 0 || depth > CQ_DEPTH_MAX {
            return Err(VerbsError::invalid(format!("depth must be in [1, {CQ_DEPTH_MAX}], got {depth}")));
        }
        let mut channel = std::ptr::null_mut();
        if threaded {
            // SAFETY: the device context is live.
            channel = unsafe { sys::ibv_create_comp_channel(device.context()) };
            if channel.is_null() {
                return Err(VerbsError::from_errno(sys::last_errno(), "ibv_create_comp_channel"));
            }
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: context and channel (or null) are live.
        let created = check(unsafe { sys::roce_create_cq(device.context(), depth as i32, channel, &mut raw) }, "ibv_create_cq");
        if let Err(error) = created {
            if !channel.is_null() {
                // SAFETY: channel was created above and is unused.
                unsafe { sys::ibv_destroy_comp_channel(channel) };
            }
            return Err(error);
        }
        let markers = Arc::new(DrainMarkers::default());
        let account = Arc::new(OnceLock::new());
        Ok(CompletionQueue { raw, channel, device: device.clone(), depth, thread: Mutex::new(None), ring: OnceLock::new(), markers, account, poll_lock: OnceLock::new() })
    }

    /// Starts the completion thread (threaded mode only, once).
    pub fn start_thread(&self, mut options: ThreadOptions, sink: Box<dyn CompletionSink>) -> Result<()> {
        assert!(!self.channel.is_null(), "start_thread on a polled CQ");
        let mut thread = self.thread.lock().expect("CQ thread lock poisoned");
        assert!(thread.is_none(), "CQ thread started twice");
        options.markers = self.markers.clone();
        options.account = self.account.clone();
        if self.ring.get().is_some() && options.release_list.is_none() {
            let lock = self.poll_lock.get_or_init(|| Arc::new(Mutex::new(())));
            options.poll_lock = Some(lock.clone());
        }
        *thread = Some(CompletionThread::start(self.raw, self.channel, options, sink)?);
        Ok(())
    }

    /// Makes this threaded CQ notified: `poll` drains `ring`, which the
    /// completion thread's sink fills. Before `start_thread`, once.
    pub fn attach_ring(&self, ring: Arc<CompletionRing>) {
        assert!(self.is_threaded(), "a completion ring on a polled CQ");
        assert!(self.ring.set(ring).is_ok(), "a second completion ring");
    }

    /// Makes this the Send CQ whose completions feed `account`. False when
    /// another QP's account came first (a CQ accounts one QP).
    pub fn attach_account(&self, account: Arc<SendQueueAccount>) -> bool {
        self.account.set(account).is_ok()
    }

    /// The drains waiting on this CQ's markers.
    pub fn markers(&self) -> &DrainMarkers {
        &self.markers
    }

    /// True when a completion thread owns polling.
    pub fn is_threaded(&self) -> bool {
        !self.channel.is_null()
    }

    /// Polls up to `out.len()` completions, spinning up to `spin` until at
    /// least one arrives. Polled mode; in notified mode it takes what the
    /// completion thread queued (never spinning).
    pub fn poll(&self, out: &mut [sys::roce_completion], spin: Duration) -> Result<usize> {
        if let Some(ring) = self.ring.get() {
            return self.take_notified(ring, out);
        }
        if self.is_threaded() {
            return Err(VerbsError::new("ERR_VERBS_CQ_THREADED", "this CQ is polled by its completion thread"));
        }
        if spin > POLL_SPIN_MAX {
            return Err(VerbsError::invalid(format!("spin must be at most {POLL_SPIN_MAX:?}")));
        }
        let started = Instant::now();
        let mut polls: u32 = 0;
        loop {
            let count = self.poll_once(out)?;
            if count > 0 || spin.is_zero() {
                return Ok(count as usize);
            }
            polls = polls.wrapping_add(1);
            // Reading the clock costs more than a poll: look every 64 polls.
            if polls % 64 == 0 && started.elapsed() >= spin {
                return Ok(0);
            }
            // Yield now and then, so a spinner never starves the threads
            // that feed it (softirq work, the peer on a small machine, GC
            // helpers): without it the lab saw 4 ms medians (a CFS slice).
            if polls % POLLS_PER_YIELD == 0 {
                // SAFETY: plain syscall without arguments.
                unsafe { libc::sched_yield() };
            }
            std::hint::spin_loop();
        }
    }

    /// Notified mode: what the ring holds, then, if the completion thread is
    /// not between a poll and its delivery (the lock is free), the CQ itself
    /// into the room left — in order, since everything the thread polled is
    /// in the ring by then. Never waits for the lock: the thread may hold it
    /// while the ring is full, which only this owner can empty.
    fn take_notified(&self, ring: &CompletionRing, out: &mut [sys::roce_completion]) -> Result<usize> {
        let Some(Ok(_held)) = self.poll_lock.get().map(|lock| lock.try_lock()) else {
            return Ok(ring.drain_into(out));
        };
        let taken = ring.drain_into(out);
        if taken == out.len() {
            return Ok(taken);
        }
        Ok(taken + self.poll_once(&mut out[taken..])?)
    }

    /// Owner-notified mode: the completion channel's descriptor, made non-blocking.
    pub fn channel_fd(&self) -> Result<i32> {
        assert!(self.is_threaded() && self.thread.lock().expect("CQ thread lock poisoned").is_none(), "channel_fd of a CQ without a channel or with a completion thread");
        // SAFETY: the channel is live while the CQ is.
        let fd = unsafe { sys::roce_comp_channel_fd(self.channel) };
        set_nonblocking(fd)?;
        Ok(fd)
    }

    /// Owner-notified mode: takes and acknowledges the channel's pending
    /// events (acknowledged at once, so dropping the CQ never waits for them).
    pub fn take_events(&self) -> u32 {
        let mut taken = 0;
        let mut cq = std::ptr::null_mut();
        let mut context = std::ptr::null_mut();
        // SAFETY: the channel's fd is non-blocking (channel_fd), so this returns when empty.
        while unsafe { sys::ibv_get_cq_event(self.channel, &mut cq, &mut context) } == 0 {
            debug_assert_eq!(cq, self.raw, "an event for a CQ that is not ours");
            taken += 1;
        }
        if taken > 0 {
            // SAFETY: we took exactly this many events for this CQ.
            unsafe { sys::ibv_ack_cq_events(self.raw, taken) };
        }
        taken
    }

    /// Owner-notified mode: asks for an event at the next completion. Poll
    /// the CQ empty afterwards: one that came before arming raises none.
    pub fn arm(&self) -> Result<()> {
        // SAFETY: the CQ is live.
        check(unsafe { sys::roce_req_notify_cq(self.raw) }, "ibv_req_notify_cq")
    }

    /// Owner-notified mode: one ibv_poll_cq into `out`; drain markers are
    /// taken out and their drains pushed on `finished`, for the caller to
    /// finish once it has routed the completions before them. Returns
    /// (polled, kept): fewer polled than `out.len()` means the CQ is empty.
    pub fn poll_owned(&self, out: &mut [sys::roce_completion], finished: &mut Vec<Arc<queue_pair_drain::QueuePairDrain>>) -> Result<(usize, usize)> {
        // SAFETY: the CQ is live; out has room for out.len() records.
        let count = unsafe { sys::roce_poll_cq(self.raw, out.len() as i32, out.as_mut_ptr()) };
        if count < 0 {
            return Err(VerbsError::from_errno(-count, "ibv_poll_cq"));
        }
        let kept = self.markers.filter(&mut out[..count as usize], finished);
        if let Some(account) = self.account.get() {
            out[..kept].iter().for_each(|completion| account.completed(completion));
        }
        Ok((count as usize, kept))
    }

    /// Owner-notified mode, on the one thread that routes this CQ: polls it
    /// empty, appending each Send (wrId below `wr_id_limit`) to `list` as a
    /// completion thread would, and writing every other completion into
    /// `others`, in order. Drain markers finish after what was polled before
    /// them is routed. Returns how many went into `others` and whether the
    /// CQ may hold more (`others` filled up first).
    pub fn route_owned(&self, list: Option<&ReleaseList>, wr_id_limit: u64, others: &mut [sys::roce_completion]) -> Result<(usize, bool)> {
        let mut polled = [sys::roce_completion::default(); ROUTE_BATCH];
        let mut finished = Vec::new();
        let mut written = 0;
        let more = loop {
            let room = ROUTE_BATCH.min(others.len() - written);
            if room == 0 {
                break true;
            }
            let (count, kept) = self.poll_owned(&mut polled[..room], &mut finished)?;
            for completion in &polled[..kept] {
                if list.is_some_and(|list| release_send(list, wr_id_limit, completion)) {
                    continue;
                }
                others[written] = *completion;
                written += 1;
            }
            if count < room {
                break false;
            }
        };
        queue_pair_drain::finish(&mut finished);
        Ok((written, more))
    }

    /// One ibv_poll_cq, drain markers taken out.
    fn poll_once(&self, out: &mut [sys::roce_completion]) -> Result<usize> {
        let mut finished = Vec::new();
        let (_, kept) = self.poll_owned(out, &mut finished)?;
        queue_pair_drain::finish(&mut finished);
        Ok(kept)
    }

    /// The raw CQ, for queue pairs.
    pub fn raw(&self) -> *mut sys::ibv_cq {
        self.raw
    }

    /// The device this CQ lives on.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// Entries requested at creation.
    pub fn depth(&self) -> u32 {
        self.depth
    }
}

impl Drop for CompletionQueue {
    fn drop(&mut self) {
        // Stop and join first: the thread must not touch the CQ we destroy.
        let thread = self.thread.get_mut().map(Option::take).unwrap_or(None);
        drop(thread);
        // SAFETY: no queue pair uses the CQ (they held Arcs) and the thread
        // is joined, having acked every event it took.
        let rc = unsafe { sys::ibv_destroy_cq(self.raw) };
        debug_assert_eq!(rc, 0, "ibv_destroy_cq failed");
        if !self.channel.is_null() {
            // SAFETY: the channel's only CQ is destroyed.
            unsafe { sys::ibv_destroy_comp_channel(self.channel) };
        }
    }
}
