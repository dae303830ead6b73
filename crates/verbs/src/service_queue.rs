//! The service queue: transports with work, waiting for an idle worker
//! thread (the ready queue of Linux's svc_xprt_enqueue / svc_recv).
//!
//! Why: RPC-over-RDMA transports are served by a pool of worker threads, as
//! nfsd threads serve svc_xprts. Completion routing (a Receive arrived, or
//! the release list went empty -> non-empty) marks its transport as having
//! work and enqueues it here without a lock and without JavaScript; an idle
//! worker in `take` takes it, owns the transport's receive step (BUSY),
//! receives one RPC and calls `received`, which clears BUSY and queues the
//! transport again if it still has work, for the first worker to come back.
//!
//! The XPT_BUSY rule: `enqueue` sets BUSY before queuing, so a transport is
//! in the queue at most once and only the worker that took it receives from
//! it; the queue is bounded by the number of transports (`TRANSPORTS_MAX`).
//!
//! Sleeping: an idle worker that can take the poller role
//! (service_completions.rs) routes the completions pending on the
//! transports' channels itself and then sleeps in epoll_wait on them; the
//! other idle workers block in a futex on `sequence`. Producers bump the
//! sequence after queuing and wake one futex sleeper if someone sleeps
//! there, else the role's holder. A taker reads the sequence before it
//! looks at the queue, so an append it missed changes the sequence and its
//! wait returns at once: no lost wake-up. What the holder routes in `take`
//! wakes nobody (it takes the first transport itself; `pop` wakes another
//! worker if more are queued).
//!
//! Life: created by JavaScript on the main thread (`serviceQueueCreate`),
//! kept in the registry (service_transport.rs) by id so every worker thread
//! reaches it; its transports hold `Arc`s. `close`
//! wakes every sleeper for good; the memory goes with the last holder.

use crate::bounded_queue::BoundedQueue;
use crate::error::Result;
use crate::service_completions::ServiceCompletions;
use crate::service_seat::{SeatArea, CALLS_PER_TAKE_MAX};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Transports one queue serves: far above what a server accepts at once
/// (each is queued at most once, so this bounds the queue).
pub const TRANSPORTS_MAX: usize = 4096;
/// Worker threads one queue serves: each has a seat recording what it holds,
/// so a dead worker's transport can be given back.
pub const WORKERS_MAX: usize = 64;
/// Longest wait of one `take` (it may block up to 1.5 times it): the
/// worker's event loop does not run meanwhile (messages, timers).
pub const TAKE_WAIT_MAX: Duration = Duration::from_secs(1);
/// Longest sleep of a worker that polls while it waits for a release or
/// its Reads: a release by another worker bumps a futex word, which its
/// epoll_wait does not see unless that worker also wakes it.
const POLLING_WAIT_SLICE: Duration = Duration::from_millis(10);

thread_local! {
    /// True while this thread routes completions inside `take`: the
    /// transports it queues are for it to take, not for another worker.
    static ROUTING_FOR_TAKE: Cell<bool> = const { Cell::new(false) };
}

/// Transport state bits (svc_xprt's xpt_flags).
pub const BUSY: u32 = 1;
/// Receives are queued, or the release list needs a drain (XPT_DATA).
pub const DATA: u32 = 1 << 1;
/// The transport is closing: no new posts; the main thread tears it down (XPT_CLOSE).
pub const CLOSE: u32 = 1 << 2;

/// The state bits of one transport, shared by completion routing and the workers.
#[derive(Default)]
pub struct TransportFlags(AtomicU32);

impl TransportFlags {
    /// Sets `bits`; returns the bits before.
    pub fn set(&self, bits: u32) -> u32 {
        self.0.fetch_or(bits, Ordering::AcqRel)
    }

    /// Clears `bits`; returns the bits before.
    pub fn clear(&self, bits: u32) -> u32 {
        self.0.fetch_and(!bits, Ordering::AcqRel)
    }

    /// The bits now (a snapshot).
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    /// svc_xprt_ready: something for a worker to do. Unlike svc_xprt, a
    /// closing transport is not: the main thread tears it down, and a worker
    /// that took it would only hand it back, keeping it BUSY (never idle) so
    /// that the teardown waits for a worker that has nothing to do.
    fn has_work(&self) -> bool {
        self.get() & (DATA | CLOSE) == DATA
    }
}

/// What a worker holds right now, so that its death can be repaired.
#[derive(Default)]
pub struct WorkerSeat {
    /// The transport it took (0: none).
    pub transport: AtomicU64,
    /// True between `take` and `received`: it owns the transport's BUSY bit.
    pub busy: AtomicBool,
}

/// Counters (read from any thread).
#[derive(Default)]
pub struct QueueCounters {
    pub enqueues: AtomicU64,
    pub takes: AtomicU64,
    pub sleeps: AtomicU64,
    pub timeouts: AtomicU64,
}

/// Ready transports (by id) and the workers sleeping for them.
pub struct ServiceQueue {
    ready: BoundedQueue<u64>,
    /// Serialises takers (workers only): the queue has one drainer at a time.
    /// Never taken on the completion path.
    takers: Mutex<()>,
    sequence: AtomicU32,
    sleepers: AtomicU32,
    closed: AtomicBool,
    seats: Box<[WorkerSeat]>,
    /// Each seat's mailbox and staging bytes (service_seat.rs), made by its first worker.
    seat_areas: Box<[OnceLock<SeatArea>]>,
    /// Most calls of one transport a take receives at once (service_seat.rs).
    calls_per_take: usize,
    pub completions: ServiceCompletions,
    pub counters: QueueCounters,
}

impl ServiceQueue {
    pub fn new() -> Result<ServiceQueue> {
        ServiceQueue::with_calls_per_take(1)
    }

    /// A queue whose takes receive up to `calls_per_take` calls of one transport (1..=CALLS_PER_TAKE_MAX).
    pub fn with_calls_per_take(calls_per_take: usize) -> Result<ServiceQueue> {
        if !(1..=CALLS_PER_TAKE_MAX).contains(&calls_per_take) {
            return Err(crate::error::VerbsError::invalid(format!("callsPerTake must be in [1, {CALLS_PER_TAKE_MAX}]")));
        }
        Ok(ServiceQueue {
            ready: BoundedQueue::new(TRANSPORTS_MAX),
            takers: Mutex::new(()),
            sequence: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            seats: (0..WORKERS_MAX).map(|_| WorkerSeat::default()).collect(),
            seat_areas: (0..WORKERS_MAX).map(|_| OnceLock::new()).collect(),
            calls_per_take,
            completions: ServiceCompletions::new()?,
            counters: QueueCounters::default(),
        })
    }

    /// svc_xprt_enqueue: queues transport `id` if it has work and nobody
    /// owns it. Lock-free; any thread (completion routing included).
    pub fn enqueue(&self, id: u64, flags: &TransportFlags) {
        if self.queue_if_ready(id, flags) {
            self.wake_one();
        }
    }

    /// Queues transport `id` if it has work and nobody owns it; true if it did.
    fn queue_if_ready(&self, id: u64, flags: &TransportFlags) -> bool {
        if !flags.has_work() || flags.set(BUSY) & BUSY != 0 {
            return false;
        }
        if self.ready.append(id).is_err() {
            panic!("service queue full ({TRANSPORTS_MAX}): each transport is queued at most once");
        }
        self.counters.enqueues.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// svc_xprt_received: the worker's receive step is over; others may
    /// take the transport again, at once if it still has work. Unlike
    /// svc_xprt_enqueue it wakes nobody for it: the next call on the
    /// connection is taken by the first worker to come back to `take` —
    /// usually this one, after its RPC — or by a worker that a completion
    /// wakes, or one that `poll_now` wakes (the backstop). Measured in the
    /// lab (2 vCPUs, client beside the server): waking a second worker for
    /// each call of one connection cost more than it served in parallel —
    /// 2 threads gave 0.41x / 0.35x / 0.15x the kernel's NULL calls/s at
    /// 1 / 4 / 16 outstanding where 1 thread gave 0.56x / 0.72x / 0.45x.
    pub fn received(&self, worker: usize, id: u64, flags: &TransportFlags) {
        let seat = &self.seats[worker];
        assert_eq!(seat.transport.load(Ordering::Acquire), id, "worker {worker} did not take transport {id}");
        assert!(seat.busy.swap(false, Ordering::AcqRel), "transport {id} received twice");
        flags.clear(BUSY);
        if self.queue_if_ready(id, flags) {
            // Not a wake: a taker that read the sequence before looks at the queue again.
            self.sequence.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Blocks worker `worker` until a transport has work (it is BUSY and
    /// recorded on the worker's seat), the wait times out (None) or the
    /// queue closes (None). The first sleep is the whole `wait` and reads no
    /// clock (it is a system call into an emulated HPET in the lab, and the
    /// common wake brings work); if it ended without work for this worker,
    /// at most half of `wait` is left, so a take blocks up to 1.5 times `wait`.
    pub fn take(&self, worker: usize, wait: Duration) -> Option<u64> {
        assert!(wait <= TAKE_WAIT_MAX, "a take may block at most {TAKE_WAIT_MAX:?}");
        let seat = &self.seats[worker];
        assert!(!seat.busy.load(Ordering::Acquire), "worker {worker} takes while it owns a transport's receive step");
        let mut deadline: Option<Instant> = None;
        let mut slept = false;
        loop {
            let sequence = self.sequence.load(Ordering::SeqCst);
            if let Some(id) = self.pop() {
                seat.transport.store(id, Ordering::Release);
                seat.busy.store(true, Ordering::Release);
                self.counters.takes.fetch_add(1, Ordering::Relaxed);
                return Some(id);
            }
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None if slept => {
                    deadline = Some(Instant::now() + wait / 2);
                    wait / 2
                }
                None => wait,
            };
            if self.closed.load(Ordering::Acquire) || remaining.is_zero() {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            slept = true;
            if let Some(poller) = self.completions.try_poller() {
                ROUTING_FOR_TAKE.with(|routing| routing.set(true));
                let handled = poller.poll(remaining, || self.sequence.load(Ordering::SeqCst) == sequence && !self.closed.load(Ordering::SeqCst));
                ROUTING_FOR_TAKE.with(|routing| routing.set(false));
                if handled == 0 {
                    self.counters.sleeps.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                // Only while someone polls: a transient holder (a waiting worker, the backstop) that
                // gave the role back without seeing this sleeper would leave the channels unwatched.
                if self.completions.is_held() {
                    self.counters.sleeps.fetch_add(1, Ordering::Relaxed);
                    futex_wait(&self.sequence, sequence, remaining);
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Most calls of one transport a take receives at once.
    pub fn calls_per_take(&self) -> usize {
        self.calls_per_take
    }

    /// The worker finished with the transport it took (its RPC is released).
    pub fn leave(&self, worker: usize) {
        let seat = &self.seats[worker];
        assert!(!seat.busy.load(Ordering::Acquire), "worker {worker} leaves a transport it still owns");
        seat.transport.store(0, Ordering::Release);
    }

    /// What worker `worker` holds: (transport, owns its BUSY bit).
    pub fn seat(&self, worker: usize) -> (u64, bool) {
        let seat = &self.seats[worker];
        (seat.transport.load(Ordering::Acquire), seat.busy.load(Ordering::Acquire))
    }

    /// Worker `worker`'s mailbox and staging bytes (made on first use, kept for the seat's next worker).
    pub fn seat_area(&self, worker: usize) -> &SeatArea {
        self.seat_areas[worker].get_or_init(SeatArea::default)
    }

    /// A worker died: forget its seat; returns what it held.
    pub fn vacate(&self, worker: usize) -> (u64, bool) {
        let seat = &self.seats[worker];
        let held = (seat.transport.swap(0, Ordering::AcqRel), seat.busy.swap(false, Ordering::AcqRel));
        held
    }

    /// Wakes every sleeper (the backstop too); later takes return None at once.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.sequence.fetch_add(1, Ordering::SeqCst);
        futex_wake(&self.sequence, i32::MAX);
        futex_wake(self.completions.watched(), i32::MAX);
        self.completions.wake();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Sleeps while `word` holds `expected`, at most `timeout` — a worker
    /// waiting for a release or for its Reads. If the poller role is free it
    /// takes it and routes completions meanwhile (they may be what it waits
    /// for, and with one worker nobody else would route them).
    pub fn wait_polling(&self, word: &AtomicU32, expected: u32, timeout: Duration) {
        if self.poll_as_transient_holder(timeout.min(POLLING_WAIT_SLICE), || word.load(Ordering::SeqCst) == expected).is_none() {
            futex_wait(word, expected, timeout);
        }
    }

    /// Routes completions as a passing holder of the poller role, if it is
    /// free (false if not), then, if it found any, hands the role to a
    /// worker asleep in the futex (it slept while the role was held, so no
    /// one would poll). After a quiet turn nobody is woken: the channels
    /// were idle, the backstop looks again within its period, and the
    /// worker that left the role comes back to it after its RPC. (Waking a
    /// sleeper after every backstop turn cost 0.6 futex wakes per NULL call
    /// at 1 outstanding, each a wake of the idle worker that found nothing.)
    fn poll_as_transient_holder(&self, wait: Duration, may_sleep: impl Fn() -> bool) -> Option<usize> {
        let poller = self.completions.try_poller()?;
        let handled = poller.poll(wait, may_sleep);
        drop(poller);
        if handled > 0 && self.sleepers.load(Ordering::SeqCst) > 0 {
            self.sequence.fetch_add(1, Ordering::SeqCst);
            futex_wake(&self.sequence, 1);
        }
        Some(handled)
    }

    /// The backstop (service_backstop.rs): routes the completions pending now
    /// if the poller role is free (every worker may be busy), and wakes a
    /// worker if a transport waits in the queue. True if it did either.
    pub fn poll_now(&self) -> bool {
        let handled = self.poll_as_transient_holder(Duration::ZERO, || false).unwrap_or(0);
        // Transports `received` queued without a wake wait no longer than this backstop's period.
        if !self.ready.is_empty() {
            self.wake_one();
            return true;
        }
        handled > 0
    }

    /// Transports queued now (a snapshot).
    pub fn len(&self) -> usize {
        self.ready.len()
    }

    /// True when no transport waits (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    fn pop(&self) -> Option<u64> {
        let _taker = self.takers.lock().expect("service queue taker lock poisoned");
        let mut taken = None;
        let drained = self.ready.drain(1, |id| taken = Some(id));
        // Another transport waits: another sleeper may take it meanwhile.
        if drained.more || (taken.is_some() && !self.ready.is_empty()) {
            self.wake_one();
        }
        taken
    }

    fn wake_one(&self) {
        self.sequence.fetch_add(1, Ordering::SeqCst);
        if ROUTING_FOR_TAKE.with(|routing| routing.get()) {
            return;
        }
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            futex_wake(&self.sequence, 1);
        } else {
            self.completions.wake();
        }
    }
}

/// Sleeps while `word` holds `expected`, at most `timeout`.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let timespec = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: word is a live, aligned u32 for the call; a private futex on it
    // only compares and sleeps (EAGAIN/ETIMEDOUT/EINTR all mean "look again").
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, expected, &timespec as *const libc::timespec);
    }
}

/// Wakes up to `count` threads sleeping on `word`.
pub fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: as in futex_wait; waking never touches memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, count);
    }
}

/// Test support: waits until `condition` holds (a thread reached the state a
/// test needs: a fixed sleep is too short on a loaded machine).
#[cfg(test)]
pub(crate) fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(10), "not {what} after 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    const SHORT: Duration = Duration::from_millis(20);

    /// A worker's loop of takes (each bounded by TAKE_WAIT_MAX), until a
    /// transport or the queue's close.
    fn take_until_closed(queue: &ServiceQueue, worker: usize) -> Option<u64> {
        loop {
            let taken = queue.take(worker, TAKE_WAIT_MAX);
            if taken.is_some() || queue.is_closed() {
                return taken;
            }
        }
    }

    #[test]
    fn a_transport_without_work_is_not_queued_and_one_with_work_is_queued_once() {
        let queue = ServiceQueue::new().unwrap();
        let flags = TransportFlags::default();
        queue.enqueue(7, &flags);
        assert!(queue.is_empty(), "no DATA: nothing to do");
        flags.set(DATA);
        queue.enqueue(7, &flags);
        queue.enqueue(7, &flags);
        assert_eq!(queue.len(), 1, "BUSY keeps it from being queued twice");
        assert_eq!(queue.take(0, SHORT), Some(7));
        assert_eq!(queue.take(1, SHORT), None, "one worker owns the receive step");
    }

    #[test]
    fn received_requeues_a_transport_that_still_has_work_and_not_one_that_has_none() {
        let queue = ServiceQueue::new().unwrap();
        let flags = TransportFlags::default();
        flags.set(DATA);
        queue.enqueue(3, &flags);
        assert_eq!(queue.take(0, SHORT), Some(3));
        queue.received(0, 3, &flags);
        assert_eq!(queue.take(1, SHORT), Some(3), "DATA still set: the next worker takes it");
        flags.clear(DATA);
        queue.received(1, 3, &flags);
        assert_eq!(queue.take(0, SHORT), None);
        assert_eq!(flags.get() & BUSY, 0);
    }

    #[test]
    fn a_transport_closed_while_a_worker_owns_it_is_not_queued_again() {
        let queue = ServiceQueue::new().unwrap();
        let flags = TransportFlags::default();
        flags.set(DATA);
        queue.enqueue(5, &flags);
        assert_eq!(queue.take(0, SHORT), Some(5));
        flags.set(CLOSE);
        queue.received(0, 5, &flags);
        assert_eq!(queue.take(1, SHORT), None, "the main thread tears a closing transport down");
        assert_eq!(flags.get() & BUSY, 0, "idle, so the teardown goes on");
    }

    #[test]
    fn with_one_worker_polling_and_one_asleep_in_the_futex_an_enqueue_is_taken_at_once_by_one_of_them() {
        let queue = Arc::new(ServiceQueue::new().unwrap());
        let flags = Arc::new(TransportFlags::default());
        let (taken, taken_by) = std::sync::mpsc::channel();
        let takers: Vec<_> = (0..2)
            .map(|worker| {
                let (queue, taken) = (queue.clone(), taken.clone());
                thread::spawn(move || {
                    let id = take_until_closed(&queue, worker);
                    taken.send((worker, id)).unwrap();
                })
            })
            .collect();
        wait_until("one taker polling and one in the futex", || {
            queue.completions.is_held() && queue.sleepers.load(Ordering::SeqCst) == 1
        });
        assert!(queue.completions.try_poller().is_none(), "one sleeping taker holds the poller role, the other sleeps in the futex");
        let started = Instant::now();
        flags.set(DATA);
        queue.enqueue(11, &flags);
        let (first, id) = taken_by.recv_timeout(Duration::from_millis(500)).expect("woken, not timed out");
        assert_eq!(id, Some(11));
        assert!(started.elapsed() < Duration::from_millis(500));
        queue.close();
        let (second, id) = taken_by.recv_timeout(Duration::from_millis(500)).expect("close wakes the other");
        assert_ne!(first, second);
        assert_eq!(id, None);
        for taker in takers {
            taker.join().unwrap();
        }
    }

    #[test]
    fn the_poller_role_has_one_holder_and_an_enqueue_wakes_it_out_of_epoll_wait() {
        let queue = Arc::new(ServiceQueue::new().unwrap());
        let flags = Arc::new(TransportFlags::default());
        let taker = {
            let queue = queue.clone();
            // Alone, it takes the poller role and sleeps in epoll_wait (no futex sleeper).
            thread::spawn(move || take_until_closed(&queue, 0))
        };
        wait_until("the taker polling", || queue.completions.is_held());
        assert!(queue.completions.try_poller().is_none(), "the sleeping taker holds the role");
        let started = Instant::now();
        flags.set(DATA);
        queue.enqueue(13, &flags);
        assert_eq!(taker.join().unwrap(), Some(13));
        assert!(started.elapsed() < Duration::from_millis(500), "woken through the eventfd, not timed out");
        assert!(queue.completions.try_poller().is_some(), "given back when the take returned");
    }

    #[test]
    fn close_wakes_every_sleeper() {
        let queue = Arc::new(ServiceQueue::new().unwrap());
        let takers: Vec<_> = (0..3)
            .map(|worker| {
                let queue = queue.clone();
                thread::spawn(move || take_until_closed(&queue, worker))
            })
            .collect();
        wait_until("one taker polling and two in the futex", || {
            queue.completions.is_held() && queue.sleepers.load(Ordering::SeqCst) == 2
        });
        let started = Instant::now();
        queue.close();
        for taker in takers {
            assert_eq!(taker.join().unwrap(), None);
        }
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn a_dead_workers_seat_gives_back_the_transport_it_owned() {
        let queue = ServiceQueue::new().unwrap();
        let flags = TransportFlags::default();
        flags.set(DATA);
        queue.enqueue(5, &flags);
        assert_eq!(queue.take(2, SHORT), Some(5));
        assert_eq!(queue.vacate(2), (5, true));
        assert_eq!(queue.seat(2), (0, false));
    }

    /// Many producers enqueue transports that each carry a count of work
    /// items; workers take, consume one item, and call received. Every item
    /// is consumed (no transport left with work and nobody queued: no lost
    /// wake-up) and no transport is ever served by two workers at once.
    #[test]
    fn stress_no_work_is_lost_and_no_transport_is_served_twice_at_once() {
        const TRANSPORTS: usize = 8;
        const ITEMS: u64 = 2000;
        let queue = Arc::new(ServiceQueue::new().unwrap());
        let flags: Arc<Vec<TransportFlags>> = Arc::new((0..TRANSPORTS).map(|_| TransportFlags::default()).collect());
        let work: Arc<Vec<AtomicU64>> = Arc::new((0..TRANSPORTS).map(|_| AtomicU64::new(0)).collect());
        let serving: Arc<Vec<AtomicBool>> = Arc::new((0..TRANSPORTS).map(|_| AtomicBool::new(false)).collect());
        let consumed = Arc::new(AtomicU64::new(0));
        let total = ITEMS * TRANSPORTS as u64;
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let (queue, flags, work, serving, consumed) = (queue.clone(), flags.clone(), work.clone(), serving.clone(), consumed.clone());
                thread::spawn(move || {
                    while consumed.load(Ordering::Acquire) < total {
                        let Some(id) = queue.take(worker, Duration::from_millis(200)) else { continue };
                        let index = id as usize - 1;
                        assert!(!serving[index].swap(true, Ordering::AcqRel), "transport {id} served by two workers at once");
                        // svc_rdma_recvfrom: clear DATA, take one, set DATA again if more remain.
                        flags[index].clear(DATA);
                        if work[index].load(Ordering::Acquire) > 0 {
                            work[index].fetch_sub(1, Ordering::AcqRel);
                            consumed.fetch_add(1, Ordering::AcqRel);
                        }
                        if work[index].load(Ordering::Acquire) > 0 {
                            flags[index].set(DATA);
                        }
                        serving[index].store(false, Ordering::Release);
                        queue.received(worker, id, &flags[index]);
                        queue.leave(worker);
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..2)
            .map(|producer| {
                let (queue, flags, work) = (queue.clone(), flags.clone(), work.clone());
                thread::spawn(move || {
                    for round in 0..ITEMS as usize * TRANSPORTS / 2 {
                        let index = (round * 2 + producer) % TRANSPORTS;
                        work[index].fetch_add(1, Ordering::AcqRel);
                        flags[index].set(DATA);
                        queue.enqueue(index as u64 + 1, &flags[index]);
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        let started = Instant::now();
        while consumed.load(Ordering::Acquire) < total {
            assert!(started.elapsed() < Duration::from_secs(20), "work left unserved: {} of {total}", consumed.load(Ordering::Acquire));
            thread::sleep(Duration::from_millis(5));
        }
        queue.close();
        for worker in workers {
            worker.join().unwrap();
        }
    }
}
