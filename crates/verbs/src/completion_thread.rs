//! The native completion thread of a threaded completion queue.
//!
//! Life: started by `CompletionQueue::start_thread`, owned by the CQ, stopped
//! and joined by the CQ's Drop (via the `Wakeup`). It is the only thread that
//! polls its CQ. It never calls JavaScript directly: it hands batches to a
//! `CompletionSink` (a threadsafe function for JavaScript, or a notified
//! CQ's `CompletionRing`) and, when a `ReleaseList` is attached, appends
//! every Send completion to it instead (successes, and failures or flushes
//! marked, see `release`). Drain markers (queue_pair_drain.rs) are taken out
//! and finish their drain once the completions polled before them are
//! routed. A panic here is a broken invariant (a full release list): the
//! process aborts rather than leave every transport of this CQ waiting.
//!
//! Loop: poll; deliver in batches of at most `batch_max`; when the CQ is
//! empty keep polling for `busy_poll` (a thread wake-up costs hundreds of µs
//! in an emulated guest, a spin does not), then arm the CQ's notification,
//! poll once more (a completion may have slipped in before arming) and sleep
//! in poll(2) on the completion channel and the stop signal.
//!
//! Notified CQs share a `poll_lock` with their owner: the thread holds it
//! from each poll until what it polled is in the ring, so an owner that
//! takes the lock (try_lock, never waiting) finds every completion polled
//! so far in the ring and may poll the CQ itself behind them, in order. An
//! owner busy with a burst takes completions that way without waiting for
//! this thread's wake-up (a sleeping thread's wake-up costs milliseconds in
//! the emulated lab); the CQ stays armed, so nothing is missed when it stops.

use crate::error::{Result, VerbsError};
use crate::queue_pair_drain::{self, DrainMarkers, QueuePairDrain};
use crate::release_list::{ReleaseList, FAILED_BIT};
use crate::send_queue_account::SendQueueAccount;
use crate::sys;
use crate::wakeup::{set_nonblocking, Wakeup, Woken};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest batch handed to the sink in one call.
pub const BATCH_MAX: usize = 256;
/// Longest busy-poll window: beyond it a spin wastes more than a wake-up costs.
pub const BUSY_POLL_MAX: Duration = Duration::from_millis(100);
/// CQ events are acknowledged in groups of this many (acking takes a lock).
const EVENTS_PER_ACK: u32 = 64;
/// Pause before retrying a sink that is full (JavaScript is behind).
const SINK_FULL_BACKOFF: Duration = Duration::from_micros(200);

/// What a sink says about a batch it was handed.
pub enum SinkOutcome {
    /// Taken.
    Accepted,
    /// Full: the batch comes back; try again shortly.
    Full(Vec<sys::roce_completion>),
    /// The consumer is gone: stop the thread.
    Closed,
}

/// Where a completion thread delivers its batches.
pub trait CompletionSink: Send {
    /// Takes one batch (never empty).
    fn deliver(&self, batch: Vec<sys::roce_completion>) -> SinkOutcome;
}

/// Default bound of the wrIds that name Sends for the release list: ids at
/// or above it (RDMA Writes and Reads, say) go to the sink.
pub const RELEASE_WR_ID_LIMIT_DEFAULT: u64 = 1 << 40;

/// How a completion thread runs.
#[derive(Clone, Default)]
pub struct ThreadOptions {
    /// How long to keep polling an empty CQ before sleeping.
    pub busy_poll: Duration,
    /// Most completions per batch (1..=BATCH_MAX).
    pub batch_max: usize,
    /// Where Send completions go instead of the sink.
    pub release_list: Option<Arc<ReleaseList>>,
    /// wrIds below this (at most FAILED_BIT) are Sends for the release list.
    pub release_wr_id_limit: u64,
    /// The drains waiting on this CQ (shared with the CompletionQueue).
    pub markers: Arc<DrainMarkers>,
    /// The Send Queue account of the QP whose Send CQ this is, once it exists.
    pub account: Arc<OnceLock<Arc<SendQueueAccount>>>,
    /// Notified CQs: held from a poll until its completions are delivered
    /// (each poll is flushed at once), shared with the owner's direct polls.
    pub poll_lock: Option<Arc<Mutex<()>>>,
}

/// Appends a Send completion (wrId below `wr_id_limit`) to `list`: a
/// failure or flush marked, closing the list's transport (a flushed
/// completion's opcode is not defined, so its wrId says it was a Send).
/// False: not the list's (an id at or above the limit, or another opcode).
pub fn release_send(list: &ReleaseList, wr_id_limit: u64, completion: &sys::roce_completion) -> bool {
    let wr_id = completion.wr_id();
    if wr_id >= wr_id_limit {
        return false;
    }
    if completion.status != sys::IBV_WC_SUCCESS {
        list.push_failed(wr_id);
        return true;
    }
    if completion.opcode != sys::IBV_WC_SEND {
        return false;
    }
    list.push(wr_id);
    true
}

/// A running completion thread; dropping it stops and joins it.
pub struct CompletionThread {
    wakeup: Arc<Wakeup>,
    join: Option<JoinHandle<()>>,
}

struct Polling {
    cq: *mut sys::ibv_cq,
    channel: *mut sys::ibv_comp_channel,
    options: ThreadOptions,
    sink: Box<dyn CompletionSink>,
    wakeup: Arc<Wakeup>,
    events_unacked: u32,
}

// SAFETY: the CQ and channel outlive the thread (the CQ joins it before
// destroying them) and only this thread polls them.
unsafe impl Send for Polling {}

impl CompletionThread {
    /// Starts polling `cq`, sleeping on `channel`.
    pub fn start(
        cq: *mut sys::ibv_cq,
        channel: *mut sys::ibv_comp_channel,
        options: ThreadOptions,
        sink: Box<dyn CompletionSink>,
    ) -> Result<CompletionThread> {
        if options.busy_poll > BUSY_POLL_MAX {
            return Err(VerbsError::invalid(format!("busyPollMicros must be at most {}", BUSY_POLL_MAX.as_micros())));
        }
        if !(1..=BATCH_MAX).contains(&options.batch_max) {
            return Err(VerbsError::invalid(format!("batchMax must be in [1, {BATCH_MAX}]")));
        }
        if options.release_list.is_some() && !(1..=FAILED_BIT).contains(&options.release_wr_id_limit) {
            return Err(VerbsError::invalid(format!("releaseWrIdLimit must be in [1, 2^52], got {}", options.release_wr_id_limit)));
        }
        // SAFETY: channel is live; its fd is ours to configure.
        set_nonblocking(unsafe { sys::roce_comp_channel_fd(channel) })?;
        let wakeup = Arc::new(Wakeup::new()?);
        let polling = Polling { cq, channel, options, sink, wakeup: wakeup.clone(), events_unacked: 0 };
        let join = std::thread::Builder::new()
            .name("roce-cq".into())
            .spawn(move || {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| polling.run())).is_err() {
                    std::process::abort();
                }
            })
            .map_err(|error| VerbsError::from_errno(error.raw_os_error().unwrap_or(libc::EAGAIN), "spawn completion thread"))?;
        Ok(CompletionThread { wakeup, join: Some(join) })
    }
}

impl Drop for CompletionThread {
    fn drop(&mut self) {
        self.wakeup.signal();
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

/// Takes the poll lock; a poisoned one cannot happen (a panic here aborts).
fn lock_polling(lock: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    lock.lock().expect("completion poll lock poisoned")
}

impl Polling {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(self.options.batch_max);
        let mut last_completion = Instant::now();
        let poll_lock = self.options.poll_lock.clone();
        while !self.wakeup.is_stopped() {
            let held = poll_lock.as_deref().map(lock_polling);
            let polled = self.poll_into(&mut batch);
            if polled < 0 {
                break;
            }
            if polled > 0 {
                last_completion = Instant::now();
                // More may be waiting: fill the batch first (not under the
                // poll lock: the owner must find what was polled delivered).
                if batch.len() < self.options.batch_max && held.is_none() {
                    continue;
                }
            }
            if !batch.is_empty() && !self.flush(&mut batch) {
                break;
            }
            drop(held);
            if polled > 0 || last_completion.elapsed() < self.options.busy_poll {
                std::hint::spin_loop();
                continue;
            }
            if !self.sleep() {
                break;
            }
            last_completion = Instant::now();
        }
        self.ack_events();
    }

    /// Polls into `batch`, routing Sends to the release list and finishing
    /// drains. Returns how many completions were polled, or -1 on a CQ error.
    fn poll_into(&mut self, batch: &mut Vec<sys::roce_completion>) -> i32 {
        let mut polled = [sys::roce_completion::default(); 32];
        let mut finished: Vec<Arc<QueuePairDrain>> = Vec::new();
        let room = (self.options.batch_max - batch.len()).min(polled.len());
        // SAFETY: the CQ is live while we run; polled has room for `room`.
        let count = unsafe { sys::roce_poll_cq(self.cq, room as i32, polled.as_mut_ptr()) };
        if count < 0 {
            return -1;
        }
        let kept = self.options.markers.filter(&mut polled[..count as usize], &mut finished);
        if let Some(account) = self.options.account.get() {
            polled[..kept].iter().for_each(|completion| account.completed(completion));
        }
        for completion in &polled[..kept] {
            if !self.release(completion) {
                batch.push(*completion);
            }
        }
        queue_pair_drain::finish(&mut finished);
        count
    }

    /// Appends a Send completion to the release list (`release_send`).
    /// False: it goes to the sink.
    fn release(&self, completion: &sys::roce_completion) -> bool {
        let Some(list) = &self.options.release_list else { return false };
        release_send(list, self.options.release_wr_id_limit, completion)
    }

    /// Hands the batch to the sink, waiting while it is full. False: stop.
    fn flush(&mut self, batch: &mut Vec<sys::roce_completion>) -> bool {
        let mut pending = std::mem::replace(batch, Vec::with_capacity(self.options.batch_max));
        loop {
            match self.sink.deliver(pending) {
                SinkOutcome::Accepted => return true,
                SinkOutcome::Closed => return false,
                SinkOutcome::Full(returned) => {
                    if self.wakeup.is_stopped() {
                        return false;
                    }
                    pending = returned;
                    std::thread::sleep(SINK_FULL_BACKOFF);
                }
            }
        }
    }

    /// Arms the CQ and sleeps until it has a completion. False: stop.
    fn sleep(&mut self) -> bool {
        // SAFETY: the CQ is live.
        if unsafe { sys::roce_req_notify_cq(self.cq) } != 0 {
            return false;
        }
        // A completion that arrived before arming raises no event: poll once.
        let poll_lock = self.options.poll_lock.clone();
        let held = poll_lock.as_deref().map(lock_polling);
        let mut probe = Vec::with_capacity(self.options.batch_max);
        let polled = self.poll_into(&mut probe);
        if polled < 0 {
            return false;
        }
        if !probe.is_empty() {
            return self.flush(&mut probe);
        }
        if polled > 0 {
            return true; // all went to the release list
        }
        drop(held);
        // SAFETY: the channel is live.
        let fd = unsafe { sys::roce_comp_channel_fd(self.channel) };
        if self.wakeup.wait(fd) == Woken::Stopped {
            return false;
        }
        self.take_events();
        true
    }

    fn take_events(&mut self) {
        let mut cq = std::ptr::null_mut();
        let mut context = std::ptr::null_mut();
        // SAFETY: the channel fd is non-blocking, so this returns when empty.
        while unsafe { sys::ibv_get_cq_event(self.channel, &mut cq, &mut context) } == 0 {
            debug_assert_eq!(cq, self.cq, "an event for a CQ that is not ours");
            self.events_unacked += 1;
            if self.events_unacked >= EVENTS_PER_ACK {
                self.ack_events();
            }
        }
    }

    fn ack_events(&mut self) {
        if self.events_unacked > 0 {
            // SAFETY: we took exactly this many events for this CQ.
            unsafe { sys::ibv_ack_cq_events(self.cq, self.events_unacked) };
            self.events_unacked = 0;
        }
    }
}
