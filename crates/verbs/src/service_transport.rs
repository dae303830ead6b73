//! A service transport: one RPC-over-RDMA connection's native state, shared
//! by every worker thread of its service queue (svcxprt_rdma's data path),
//! and the registry that names transports and queues by id.
//!
//! What it owns: the connection's queue pair (on the JavaScript CmId, made
//! here), a Receive CQ and a Send CQ with no completion thread: their
//! channels are watched by the service queue's poller (service_completions.rs,
//! an idle worker), which routes a Receive to `receives` and enqueues the
//! transport (sets DATA), appends every Send to the release list and does
//! nothing else (its empty -> non-empty transition wakes a worker waiting
//! for a send context, or else sets DATA and enqueues the transport: the
//! seed's self-enqueue) and reports RDMA Reads to the chunk buffers
//! (`on_channel_event`), and three areas of registered memory
//! allocated here: the Receive slots, the send contexts' buffers and the
//! chunk buffers (service_chunks.rs), which every worker isolate sees as
//! external ArrayBuffers (no copy, no per-isolate registration).
//!
//! Send completions: routing a Send only appends its context to the
//! release list (as above), but the Send CQ raises an event only while
//! someone waits for one of its completions — a worker short of a context
//! or Send Queue room (sq-wait), a worker waiting for its Reads, a teardown
//! waiting for its drain markers: each arms it (`arm_send_events`) after
//! counting itself, and the event's routing re-arms it while anyone still
//! waits. Otherwise its completions are polled (`route_sends`, one thread
//! at a time, lock-free): by a worker whose free list is empty, right
//! before its empty-free-list drain, and by the backstop for a transport
//! with no release since its previous turn (`route_idle_sends`: the
//! trailing edge of a burst, whose transition self-enqueues the transport).
//! Why: an event cost the idle worker a wake, a read and a re-arm (a system
//! call each in the lab) per reply, and at one outstanding call the
//! trailing-edge self-enqueue of every reply a second wake and an empty
//! receive; now a reply's Send is routed by the next reply's get.
//!
//! Send Queue: every work request takes an entry (`sq_available`) before it
//! is posted — a reply its Writes and its Send, given back by the drain that
//! releases its context; a call's Reads, given back when they completed. A
//! worker short of entries, contexts or chunk buffers waits for a release
//! (the sq-wait drain point), bounded.
//!
//! Life: created by the main thread for an accepted connection
//! (`serviceTransportCreate`), kept in the registry so any worker reaches it
//! by id. Workers take it from the service queue with a call
//! (`take_call`: `next_receive`, only the worker owning BUSY), then call
//! `read_chunks`, `post_staged_reply` (or `get_send_context` and
//! `post_reply` for a reply with Writes) and `release`. CLOSE stops new posts and calls `on_close` (the main thread,
//! once); the main thread waits until no worker uses it (`is_idle`), drains
//! the queue pair, then `finish`es it: drain (teardown), Receives flushed,
//! contexts checked, QP destroyed, CQs (out of the poller's set) and regions
//! dropped, registry entry removed. The memory itself lives until the last
//! isolate's ArrayBuffer over it is collected.
//!
//! Threads: completion routing (one thread at a time per CQ: the poller
//! role; `route_sends` for the Send CQ) only appends and enqueues (no lock,
//! no JavaScript); the free lists are behind mutexes taken by workers and the
//! main thread only. Several workers may drain the release list at once
//! (its drain swaps the whole batch out, as llist_del_all does).

use crate::bounded_queue::{BoundedQueue, Waker};
use crate::cm_id::{CmId, SendRequest};
use crate::completion_queue::CompletionQueue;
use crate::completion_thread::{release_send, RELEASE_WR_ID_LIMIT_DEFAULT};
use crate::queue_pair_drain;
use crate::service_call_header::{plain_call_header, PlainCallHeader};
use crate::service_completions::Channel;
use crate::error::{Result, VerbsError};
use crate::memory_region::{Access, MemoryRegion};
use crate::protection_domain::ProtectionDomain;
use crate::release_list::{ReleaseList, FAILED_BIT};
use crate::service_chunks::{checked_total, ChunkBuffers, ReadWait, RemoteSegment, CHUNK_BYTES_MAX, READS_PER_CALL_MAX, READ_WR_ID_BASE, WRITES_PER_REPLY_MAX, WRITE_WR_ID};
use crate::service_queue::{futex_wake, ServiceQueue, TransportFlags, BUSY, CLOSE, DATA, WORKERS_MAX};
use crate::service_seat::CALLS_PER_TAKE_MAX;
use crate::sys;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Largest credit grant (Receives kept posted): svcrdma's own limit.
pub const CREDITS_MAX: u32 = 16384;
/// Largest Receive slot / send-context buffer: the largest inline size.
pub const BUFFER_BYTES_MAX: u32 = 65536;
/// Longest one wait for a send context: the worker rechecks the transport's state this often.
const SEND_WAIT_SLICE: Duration = Duration::from_millis(100);
/// Completions taken per ibv_poll_cq when routing a channel's event.
const POLL_BATCH: usize = 32;

thread_local! {
    /// True while this thread routes Send completions right before it drains
    /// the release list itself: the list's transition then asks for no drain.
    static DRAIN_FOLLOWS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The drain points of the seed, in `TransportCounters::drains` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainPoint {
    BetweenRpcs = 0,
    SelfEnqueue = 1,
    EmptyFreeList = 2,
    SqWait = 3,
    Teardown = 4,
}
pub const DRAIN_POINTS: usize = 5;
/// Upper bounds of the drain batch-size buckets (the last is open).
pub const BATCH_BUCKETS: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, usize::MAX];

/// Sizes of one transport.
#[derive(Clone, Copy, Debug)]
pub struct TransportShape {
    pub credits: u32,
    pub slot_bytes: u32,
    pub contexts_max: u32,
    pub context_bytes: u32,
    pub send_queue_depth: u32,
    pub busy_poll: Duration,
    /// Bytes of each chunk buffer: the largest Read list or set of Writes served.
    pub chunk_bytes: u32,
}

impl TransportShape {
    fn check(&self) -> Result<()> {
        if !(1..=CREDITS_MAX).contains(&self.credits) {
            return Err(VerbsError::invalid(format!("credits must be in [1, {CREDITS_MAX}]")));
        }
        if !(64..=BUFFER_BYTES_MAX).contains(&self.slot_bytes) || !(64..=BUFFER_BYTES_MAX).contains(&self.context_bytes) {
            return Err(VerbsError::invalid(format!("slot and context bytes must be in [64, {BUFFER_BYTES_MAX}]")));
        }
        // Every posted Send holds a context, so contexts bound the Send Queue's use.
        if self.contexts_max == 0 || self.contexts_max > self.send_queue_depth {
            return Err(VerbsError::invalid("contextsMax must be in [1, sendQueueDepth]"));
        }
        if !(4096..=CHUNK_BYTES_MAX).contains(&self.chunk_bytes) {
            return Err(VerbsError::invalid(format!("chunk bytes must be in [4096, {CHUNK_BYTES_MAX}]")));
        }
        Ok(())
    }

    /// Receive slots: the credits kept posted plus as many held by calls in service.
    fn slots(&self) -> u32 {
        self.credits * 2
    }
}

/// Memory allocated here, registered while the transport lives, freed when
/// the last isolate's ArrayBuffer over it is gone.
pub struct AreaMemory {
    pointer: *mut u8,
    length: usize,
}

// SAFETY: plain bytes; who writes where is ruled by the slot and context
// ownership above (one owner at a time), as for any registered buffer.
unsafe impl Send for AreaMemory {}
// SAFETY: as above.
unsafe impl Sync for AreaMemory {}

impl AreaMemory {
    pub(crate) fn new(length: usize) -> Arc<AreaMemory> {
        let pointer = Box::into_raw(vec![0u8; length].into_boxed_slice()).cast::<u8>();
        Arc::new(AreaMemory { pointer, length })
    }

    pub fn pointer(&self) -> *mut u8 {
        self.pointer
    }

    pub fn length(&self) -> usize {
        self.length
    }
}

impl Drop for AreaMemory {
    fn drop(&mut self) {
        // SAFETY: made by Box::into_raw of a boxed slice of `length` bytes in `new`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.pointer, self.length)) });
    }
}

/// What `finish` lets go: the verbs objects.
struct Links {
    send_cq: Arc<CompletionQueue>,
    recv_cq: Arc<CompletionQueue>,
    /// The CQs' channels, in the service queue's epoll set until `finish`.
    channel_fds: [i32; 2],
    receive_region: MemoryRegion,
    send_region: MemoryRegion,
    chunk_region: MemoryRegion,
}

const CONTEXT_FREE: u8 = 0;
const CONTEXT_BUILDING: u8 = 1;
const CONTEXT_POSTED: u8 = 2;

/// Counters of one transport, read from any thread.
#[derive(Default)]
pub struct TransportCounters {
    pub receives: AtomicU64,
    pub empty_receives: AtomicU64,
    pub self_enqueues: AtomicU64,
    pub sq_waits: AtomicU64,
    pub allocations: AtomicU64,
    pub exhausted: AtomicU64,
    pub failed_sends: AtomicU64,
    pub lost_sends: AtomicU64,
    /// Replies not posted: no send context (or Send Queue room, or write buffer) in time, or the transport closing.
    pub dropped_replies: AtomicU64,
    /// Calls whose Read chunks were pulled, their bytes, and failed Reads (posts refused, or
    /// completed in error by the device; flushed ones are not counted).
    pub read_calls: AtomicU64,
    pub read_bytes: AtomicU64,
    pub read_failures: AtomicU64,
    /// Replies that posted RDMA Writes (Write chunks, Reply chunk), and their bytes.
    pub write_replies: AtomicU64,
    pub written_bytes: AtomicU64,
    pub drains: [AtomicU64; DRAIN_POINTS],
    pub released: [AtomicU64; DRAIN_POINTS],
    pub batch_sizes: [AtomicU64; BATCH_BUCKETS.len()],
}

/// A completed Receive handed to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receive {
    pub slot: u32,
    pub byte_length: u32,
    /// Its transport header, if the call is plain (service_call_header.rs).
    pub plain: Option<PlainCallHeader>,
}

/// How a worker's pull of a call's Read chunks ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Every Read completed into this chunk buffer, held until the release.
    Done(u32),
    /// A Read failed or the transport closes: no data (the transport is closing).
    Failed,
    /// No read buffer or Send Queue room came free in time: nothing posted.
    Busy,
    /// Posted, not completed in time: wait again (`wait_reads`).
    InFlight,
    /// The segment list is beyond our limits: answer ERR_CHUNK.
    Refused,
}

/// One connection's native data path, shared by the service queue's workers.
pub struct ServiceTransport {
    pub id: u64,
    pub flags: TransportFlags,
    pub shape: TransportShape,
    pub counters: TransportCounters,
    queue: Arc<ServiceQueue>,
    cm_id: Arc<CmId>,
    /// Receive completions in arrival order; drained only by the worker owning BUSY.
    receives: BoundedQueue<sys::roce_completion>,
    release_list: OnceLock<Arc<ReleaseList>>,
    links: RwLock<Option<Links>>,
    pub receive_memory: Arc<AreaMemory>,
    pub send_memory: Arc<AreaMemory>,
    pub chunks: ChunkBuffers,
    /// Send Queue entries not taken by a posted or reserved work request.
    sq_available: AtomicI64,
    /// Send Queue entries each context reserved (its Writes and its Send).
    context_work_requests: Box<[AtomicU32]>,
    free_slots: Mutex<Vec<u32>>,
    posted_receives: AtomicU32,
    free_contexts: Mutex<Vec<u32>>,
    context_states: Box<[AtomicU8]>,
    allocated_contexts: AtomicU32,
    send_wake: AtomicU32,
    send_waiters: AtomicU32,
    /// The Send CQ asks for an event at its next completion (see "Send completions" at the top).
    send_cq_armed: AtomicBool,
    /// Signaled Sends posted whose completions were not routed yet.
    sends_in_flight: AtomicU32,
    /// Workers waiting for their Reads' completion (on the Send CQ).
    read_waiters: AtomicU32,
    /// The queue pair is being drained: its markers' completions must raise events.
    draining: AtomicBool,
    /// One thread at a time polls the Send CQ; others leave a note (`send_routing_again`) and go.
    send_routing: AtomicBool,
    send_routing_again: AtomicBool,
    /// Releases so far, and their count when the backstop last looked (a transport gone idle).
    releases: AtomicU32,
    releases_seen_by_backstop: AtomicU32,
    /// Workers between `next_receive` and `release`.
    users: AtomicU32,
    /// What each worker holds, for `worker_died`: the slots of the calls it took
    /// (`CALLS_PER_TAKE_MAX` per worker, -1 none), a context being built (-1 none).
    held_slots: Box<[AtomicI64]>,
    held_contexts: Box<[AtomicI64]>,
    using: Box<[AtomicBool]>,
    on_close: Option<Waker>,
}

impl ServiceTransport {
    /// Creates the transport's CQs, release list, memory and queue pair on
    /// `cm_id` (an accepted connect request), and posts its Receives.
    pub fn create(queue: Arc<ServiceQueue>, cm_id: Arc<CmId>, pd: &Arc<ProtectionDomain>, shape: TransportShape, on_close: Option<Waker>) -> Result<Arc<ServiceTransport>> {
        shape.check()?;
        let device = cm_id.device()?;
        let slots = shape.slots();
        let transport = Arc::new(ServiceTransport {
            id: next_id(),
            flags: TransportFlags::default(),
            shape,
            counters: TransportCounters::default(),
            queue,
            cm_id: cm_id.clone(),
            receives: BoundedQueue::new((slots as usize).next_power_of_two()),
            release_list: OnceLock::new(),
            links: RwLock::new(None),
            receive_memory: AreaMemory::new((slots * shape.slot_bytes) as usize),
            send_memory: AreaMemory::new((shape.contexts_max * shape.context_bytes) as usize),
            chunks: ChunkBuffers::new(shape.chunk_bytes, shape.contexts_max),
            sq_available: AtomicI64::new(shape.send_queue_depth as i64),
            context_work_requests: (0..shape.contexts_max).map(|_| AtomicU32::new(0)).collect(),
            free_slots: Mutex::new((0..slots).rev().collect()),
            posted_receives: AtomicU32::new(0),
            free_contexts: Mutex::new(Vec::with_capacity(shape.contexts_max as usize)),
            context_states: (0..shape.contexts_max).map(|_| AtomicU8::new(CONTEXT_FREE)).collect(),
            allocated_contexts: AtomicU32::new(0),
            send_wake: AtomicU32::new(0),
            send_waiters: AtomicU32::new(0),
            send_cq_armed: AtomicBool::new(true),
            sends_in_flight: AtomicU32::new(0),
            read_waiters: AtomicU32::new(0),
            draining: AtomicBool::new(false),
            send_routing: AtomicBool::new(false),
            send_routing_again: AtomicBool::new(false),
            releases: AtomicU32::new(0),
            releases_seen_by_backstop: AtomicU32::new(0),
            users: AtomicU32::new(0),
            held_slots: (0..WORKERS_MAX * CALLS_PER_TAKE_MAX).map(|_| AtomicI64::new(-1)).collect(),
            held_contexts: (0..WORKERS_MAX).map(|_| AtomicI64::new(-1)).collect(),
            using: (0..WORKERS_MAX).map(|_| AtomicBool::new(false)).collect(),
            on_close,
        });
        let weak = Arc::downgrade(&transport);
        let waker: Waker = Box::new(move || {
            if let Some(transport) = weak.upgrade() {
                transport.on_release_pending();
            }
        });
        // Every context is free, being built, posted or on the list: the list never fills.
        let list = Arc::new(ReleaseList::new((shape.contexts_max as usize).next_power_of_two().max(2), Some(waker)));
        assert!(transport.release_list.set(list).is_ok());
        // With channels, polled by the service queue's poller: no completion thread.
        let recv_cq = Arc::new(CompletionQueue::create(&device, slots + 1, true)?);
        let send_cq = Arc::new(CompletionQueue::create(&device, shape.send_queue_depth + 1, true)?);
        let channel_fds = [recv_cq.channel_fd()?, send_cq.channel_fd()?];
        let mut capabilities = sys::roce_qp_capabilities { max_send_wr: shape.send_queue_depth, max_recv_wr: slots, max_send_sge: 1, max_recv_sge: 1, max_inline_data: 0 };
        cm_id.create_queue_pair(pd, &send_cq, &recv_cq, &mut capabilities)?;
        let local_write = Access { local_write: true, ..Default::default() };
        // SAFETY: both areas live until the last of the transport and every
        // isolate's ArrayBuffer over them; the regions are dropped in `finish` or with the transport.
        let receive_region = unsafe { MemoryRegion::register(pd, transport.receive_memory.pointer, transport.receive_memory.length, local_write)? };
        let send_region = unsafe { MemoryRegion::register(pd, transport.send_memory.pointer, transport.send_memory.length, Access::default())? };
        // SAFETY: as above; RDMA Reads land in it, RDMA Writes read from it.
        let chunk_memory = &transport.chunks.memory;
        let chunk_region = unsafe { MemoryRegion::register(pd, chunk_memory.pointer, chunk_memory.length, local_write)? };
        *transport.links.write().expect("links lock") = Some(Links { send_cq: send_cq.clone(), recv_cq: recv_cq.clone(), channel_fds, receive_region, send_region, chunk_region });
        transport.post_receives()?;
        // In the registry before its channels are watched: the poller finds it by id.
        registry().transports.lock().expect("registry lock").insert(transport.id, transport.clone());
        let watched = recv_cq.arm().and_then(|()| send_cq.arm()).and_then(|()| {
            let completions = &transport.queue.completions;
            completions.watch(transport.id, Channel::Receive, channel_fds[0], shape.busy_poll)?;
            completions.watch(transport.id, Channel::Send, channel_fds[1], shape.busy_poll)
        });
        if let Err(error) = watched {
            transport.unwatch(channel_fds);
            registry().transports.lock().expect("registry lock").remove(&transport.id);
            return Err(error);
        }
        Ok(transport)
    }

    fn unwatch(&self, channel_fds: [i32; 2]) {
        channel_fds.iter().for_each(|fd| self.queue.completions.unwatch(*fd));
    }

    /// The poller took an event of this transport's `channel` (one thread
    /// at a time): for the Receive CQ, re-arm it, then poll it empty and
    /// route what it holds — Receives queued; for the Send CQ, route what it
    /// holds (Sends to the release list, Reads to the chunk buffers, drain
    /// markers finished after the completions polled before them) and re-arm
    /// it only if someone waits for its completions (`wants_send_events`).
    pub fn on_channel_event(&self, channel: Channel) {
        let guard = self.links.read().expect("links lock");
        let Some(links) = guard.as_ref() else { return };
        if channel == Channel::Send {
            links.send_cq.take_events();
            self.send_cq_armed.store(false, Ordering::SeqCst);
            drop(guard);
            self.route_sends();
            if self.wants_send_events() {
                self.arm_send_events();
            }
            return;
        }
        let cq = &links.recv_cq;
        cq.take_events();
        if cq.arm().is_err() {
            self.close();
            return;
        }
        let mut polled = [sys::roce_completion::default(); POLL_BATCH];
        let mut finished = Vec::new();
        loop {
            let Ok((count, kept)) = cq.poll_owned(&mut polled, &mut finished) else {
                self.close();
                break;
            };
            self.on_receives(&polled[..kept]);
            queue_pair_drain::finish(&mut finished);
            if count < POLL_BATCH {
                break;
            }
        }
    }

    /// Someone waits for what only a Send CQ completion brings: a send
    /// context or Send Queue room (sq-wait), its Reads, a drain's markers.
    fn wants_send_events(&self) -> bool {
        self.send_waiters.load(Ordering::SeqCst) > 0 || self.read_waiters.load(Ordering::SeqCst) > 0 || self.draining.load(Ordering::SeqCst)
    }

    /// Arms the Send CQ if it is not, then routes what it holds (what came
    /// before arming raises no event). Called by whoever is about to wait
    /// for a Send CQ completion, after counting itself a waiter.
    fn arm_send_events(&self) {
        if !self.send_cq_armed.swap(true, Ordering::SeqCst) {
            let links = self.links.read().expect("links lock");
            if links.as_ref().is_some_and(|links| links.send_cq.arm().is_err()) {
                drop(links);
                self.close();
                return;
            }
        }
        self.route_sends();
    }

    /// Polls the Send CQ empty and routes what it holds, unless another
    /// thread is at it: then it leaves a note, and that thread polls again
    /// before it stops (so no completion waits for a poll nobody makes, and
    /// a drain marker is finished only after the completions before it).
    /// Lock-free: nobody waits for anybody. Returns the completions routed here.
    fn route_sends(&self) -> usize {
        let mut routed = 0;
        self.send_routing_again.store(true, Ordering::SeqCst);
        loop {
            if self.send_routing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
                return routed;
            }
            while self.send_routing_again.swap(false, Ordering::SeqCst) {
                routed += self.poll_send_cq();
            }
            self.send_routing.store(false, Ordering::SeqCst);
            if !self.send_routing_again.load(Ordering::SeqCst) {
                return routed;
            }
        }
    }

    fn poll_send_cq(&self) -> usize {
        let links = self.links.read().expect("links lock");
        let Some(links) = links.as_ref() else { return 0 };
        let mut polled = [sys::roce_completion::default(); POLL_BATCH];
        let mut finished = Vec::new();
        let mut routed = 0;
        loop {
            let Ok((count, kept)) = links.send_cq.poll_owned(&mut polled, &mut finished) else {
                self.close();
                return routed;
            };
            self.on_sends(&polled[..kept]);
            routed += count;
            queue_pair_drain::finish(&mut finished);
            if count < POLL_BATCH {
                return routed;
            }
        }
    }

    /// Routes the Send completions the CQ holds, then drains the release
    /// list at `point` — the route's empty -> non-empty transition enqueues
    /// nobody (`DRAIN_FOLLOWS`): the drain it would ask for is the next step.
    fn route_sends_and_drain(&self, point: DrainPoint) -> usize {
        if self.sends_in_flight.load(Ordering::SeqCst) > 0 {
            DRAIN_FOLLOWS.with(|follows| follows.set(true));
            self.route_sends();
            DRAIN_FOLLOWS.with(|follows| follows.set(false));
        }
        self.drain(point)
    }

    /// The backstop's turn (service_backstop.rs): the Sends of a transport
    /// with no release since its previous turn (an idle connection: the
    /// trailing edge of a burst) are routed, so their transition enqueues
    /// the transport (self-enqueue). True if it routed any.
    pub fn route_idle_sends(queue: &ServiceQueue) -> bool {
        let transports: Vec<Arc<ServiceTransport>> = registry().transports.lock().expect("registry lock").values().filter(|transport| std::ptr::eq(Arc::as_ptr(&transport.queue), queue)).cloned().collect();
        let mut routed = false;
        for transport in transports {
            let releases = transport.releases.load(Ordering::SeqCst);
            let seen = transport.releases_seen_by_backstop.swap(releases, Ordering::SeqCst);
            if releases == seen && transport.sends_in_flight.load(Ordering::SeqCst) > 0 {
                routed |= transport.route_sends() > 0;
            }
        }
        routed
    }

    /// The release list went empty -> non-empty (completion routing): a worker
    /// waiting for a send context takes it and drains after its wait;
    /// otherwise the transport marks itself as having work and enqueues itself.
    fn on_release_pending(&self) {
        if DRAIN_FOLLOWS.with(|follows| follows.get()) {
            return;
        }
        if self.send_waiters.load(Ordering::SeqCst) > 0 {
            self.wake_send_waiters();
            return;
        }
        self.counters.self_enqueues.fetch_add(1, Ordering::Relaxed);
        self.flags.set(DATA);
        self.enqueue();
    }

    fn enqueue(&self) {
        if self.flags.get() & CLOSE == 0 {
            self.queue.enqueue(self.id, &self.flags);
        }
    }

    /// Receive completions: queue them, mark DATA, enqueue. The queue holds
    /// every slot (`shape.slots()`), so it never fills; if it did, the
    /// transport would close rather than lose a completion silently.
    fn on_receives(&self, completions: &[sys::roce_completion]) {
        if completions.is_empty() {
            return;
        }
        if completions.iter().any(|completion| self.receives.append(*completion).is_err()) {
            self.close();
        }
        self.flags.set(DATA);
        self.enqueue();
    }

    /// Send CQ completions: Sends go to the release list; here come the
    /// signaled last Read of a call (its outcome stored, its worker woken)
    /// and failures: a failed Read or Write closes the transport.
    fn on_sends(&self, completions: &[sys::roce_completion]) {
        let list = self.release_list();
        for completion in completions {
            if release_send(list, RELEASE_WR_ID_LIMIT_DEFAULT, completion) {
                self.sends_in_flight.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let succeeded = completion.status == sys::IBV_WC_SUCCESS;
            let is_read = ChunkBuffers::is_read_wr_id(completion.wr_id());
            if is_read {
                self.chunks.on_read_completion(completion.wr_id(), succeeded);
                // Counted here, not by the waiting worker: the Receive CQ's flush may close the
                // transport first, and the worker then gives up on its Reads without their outcome.
                if !succeeded && completion.status != sys::IBV_WC_WR_FLUSH_ERR {
                    self.counters.read_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !succeeded || !is_read {
                self.close();
            }
        }
    }

    /// svc_recv for worker `worker`: takes transports from `queue` until one
    /// has completed Receives for JavaScript to serve — returned with up to
    /// the queue's `calls_per_take` of them (`next_receives`), the receive
    /// step already ended — or `wait` passes or the queue closes (None). A
    /// transport taken with nothing received — DATA set by its release list's
    /// empty -> non-empty transition, the seed's self-enqueue — is served
    /// here: an empty receive, then the release's drain, as svc_recv does
    /// when xpo_recvfrom returns 0; so is a closing one (its flushed Receives
    /// go back). None of it returns to JavaScript. The clock is read only
    /// after such a turn, so the whole call may block up to three times
    /// `wait` (each take may block 1.5 times its wait: the first take's, then
    /// what is left).
    pub fn take_call(queue: &ServiceQueue, worker: usize, wait: Duration) -> Option<(u64, Vec<Receive>)> {
        let mut remaining = wait;
        let mut deadline = None;
        loop {
            let id = queue.take(worker, remaining)?;
            let transport = registry().transports.lock().expect("registry lock").get(&id).cloned();
            match transport {
                Some(transport) => {
                    let receives = transport.next_receives(worker, queue.calls_per_take());
                    if !receives.is_empty() {
                        return Some((id, receives));
                    }
                    transport.release(worker);
                }
                // Torn down after the teardown gave up waiting for it: only the seat is left to clear.
                None => {
                    queue.vacate(worker);
                }
            }
            let now = Instant::now();
            remaining = deadline.get_or_insert(now + wait).saturating_duration_since(now);
        }
    }

    /// svc_rdma_recvfrom for worker `worker`, which owns BUSY: up to `max`
    /// completed Receives in arrival order (none: only a release follows).
    /// Calls after the first are taken only while the ones before are plain
    /// (service_call_header.rs): a call with chunks ends the batch, so each
    /// batch has at most one call that pulls Reads or builds a context of
    /// its own. Failed Receives (flushes) give their slot back and close the
    /// transport. Ends the receive step (svc_xprt_received, in the same call),
    /// so another worker may take the calls still queued.
    pub fn next_receives(&self, worker: usize, max: usize) -> Vec<Receive> {
        let taken = self.take_receives(worker, max);
        self.queue.received(worker, self.id, &self.flags);
        taken
    }

    fn take_receives(&self, worker: usize, max: usize) -> Vec<Receive> {
        assert!((1..=CALLS_PER_TAKE_MAX).contains(&max), "{max} calls per take");
        assert_eq!(self.queue.seat(worker), (self.id, true), "worker {worker} receives without owning transport {}", self.id);
        assert!(!self.using[worker].swap(true, Ordering::AcqRel), "worker {worker} receives twice without a release");
        self.users.fetch_add(1, Ordering::AcqRel);
        self.flags.clear(DATA);
        let mut taken: Vec<Receive> = Vec::with_capacity(max);
        while taken.len() < max && taken.last().is_none_or(|last| last.plain.is_some()) {
            let mut completion = None;
            self.receives.drain(1, |value| completion = Some(value));
            let Some(completion) = completion else { break };
            self.posted_receives.fetch_sub(1, Ordering::AcqRel);
            let slot = completion.wr_id() as u32;
            if completion.status != sys::IBV_WC_SUCCESS || self.is_closing() {
                self.free_slot(slot);
                self.close();
                continue;
            }
            self.held_slots[worker * CALLS_PER_TAKE_MAX + taken.len()].store(slot as i64, Ordering::Release);
            taken.push(Receive { slot, byte_length: completion.byte_len, plain: self.plain_header_of(slot, completion.byte_len) });
        }
        if !self.receives.is_empty() {
            self.flags.set(DATA);
        }
        if taken.is_empty() {
            self.counters.empty_receives.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.receives.fetch_add(taken.len() as u64, Ordering::Relaxed);
            // Replace the Receives now, as svc_rdma_recvfrom refreshes them, so credits stay posted.
            let _ = self.post_receives();
        }
        taken
    }

    /// Gives back every Receive slot `worker` holds; true if it held any.
    fn free_held_slots(&self, worker: usize) -> bool {
        let held = &self.held_slots[worker * CALLS_PER_TAKE_MAX..(worker + 1) * CALLS_PER_TAKE_MAX];
        let mut freed = false;
        for slot in held {
            let slot = slot.swap(-1, Ordering::AcqRel);
            if slot >= 0 {
                self.free_slot(slot as u32);
                freed = true;
            }
        }
        if freed {
            let _ = self.post_receives();
        }
        freed
    }

    /// The transport header of the call received into `slot`, if it is plain.
    fn plain_header_of(&self, slot: u32, byte_length: u32) -> Option<PlainCallHeader> {
        let length = byte_length.min(self.shape.slot_bytes) as usize;
        // SAFETY: the slot lies inside the receive area; its Receive completed and the taking worker holds it, so nothing writes it now.
        let received = unsafe { std::slice::from_raw_parts(self.receive_memory.pointer().add(slot as usize * self.shape.slot_bytes as usize), length) };
        plain_call_header(received)
    }

    /// A send context for worker `worker` to build a reply of
    /// `work_requests` work requests in (its Writes and its Send), with a
    /// write buffer if the reply has Writes; None when the transport closes
    /// or nothing came free within `wait`. An empty free list drains first
    /// (empty-free-list), then allocates up to the bound; a worker short of
    /// contexts, write buffers or Send Queue room waits for a release and
    /// drains after the wait (sq-wait). All or nothing: a waiting worker
    /// holds none of them.
    pub fn get_send_context(&self, worker: usize, wait: Duration, work_requests: u32, with_write_buffer: bool) -> Option<(u32, Option<u32>)> {
        assert!((1..=self.shape.send_queue_depth).contains(&work_requests), "a reply of {work_requests} work requests for a Send Queue of {}", self.shape.send_queue_depth);
        let Some((context, buffer)) = self.acquire(wait, || self.try_send_resources(work_requests, with_write_buffer)) else {
            self.counters.dropped_replies.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.claim_context(context, work_requests, buffer);
        self.held_contexts[worker].store(context as i64, Ordering::Release);
        Some((context, buffer))
    }

    /// A context got for a reply of `work_requests` (its Send Queue entries reserved), being built now.
    fn claim_context(&self, context: u32, work_requests: u32, write_buffer: Option<u32>) {
        let before = self.context_states[context as usize].swap(CONTEXT_BUILDING, Ordering::AcqRel);
        assert_eq!(before, CONTEXT_FREE, "send context {context} handed out while in use");
        self.context_work_requests[context as usize].store(work_requests, Ordering::Release);
        if let Some(buffer) = write_buffer {
            self.chunks.attach_write(context, buffer);
        }
    }

    fn try_send_resources(&self, work_requests: u32, with_write_buffer: bool) -> Option<(u32, Option<u32>)> {
        let context = self.pop_free_context().or_else(|| {
            self.route_sends_and_drain(DrainPoint::EmptyFreeList);
            self.pop_free_context().or_else(|| self.allocate_context())
        })?;
        let buffer = if with_write_buffer { self.chunks.take_write() } else { None };
        if (with_write_buffer && buffer.is_none()) || !self.reserve_send_queue(work_requests) {
            if let Some(buffer) = buffer {
                self.chunks.put_write(buffer);
            }
            self.free_contexts.lock().expect("contexts lock").push(context);
            return None;
        }
        Some((context, buffer))
    }

    /// Runs `attempt` until it gets what it needs, the transport closes or
    /// `wait` passes; between attempts waits for a release (a release-list
    /// transition, a drain or release that freed something, Reads that
    /// completed) and drains after the wait (sq-wait).
    fn acquire<T>(&self, wait: Duration, mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
        // Read only once an attempt failed: the clock is a system call into an emulated HPET in the lab.
        let mut deadline = None;
        let mut waited = false;
        loop {
            if self.is_closing() {
                return None;
            }
            // Counted before the attempt: a release after it changes the sequence, so no wake is lost.
            self.send_waiters.fetch_add(1, Ordering::SeqCst);
            let sequence = self.send_wake.load(Ordering::SeqCst);
            let acquired = attempt();
            if acquired.is_some() {
                self.send_waiters.fetch_sub(1, Ordering::SeqCst);
                return acquired;
            }
            let now = Instant::now();
            let remaining = deadline.get_or_insert(now + wait).saturating_duration_since(now);
            // Completions routed now or later wake us (counted as a waiter: the transition wakes waiters).
            if !remaining.is_zero() {
                self.arm_send_events();
            }
            // A transition while we were counted woke waiters instead of enqueuing: look at the list first.
            if !remaining.is_zero() && self.release_list().is_empty() {
                self.queue.wait_polling(&self.send_wake, sequence, remaining.min(SEND_WAIT_SLICE));
            }
            self.send_waiters.fetch_sub(1, Ordering::SeqCst);
            if remaining.is_zero() {
                self.counters.exhausted.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            if !waited {
                self.counters.sq_waits.fetch_add(1, Ordering::Relaxed);
                waited = true;
            }
            self.drain(DrainPoint::SqWait);
        }
    }

    fn reserve_send_queue(&self, entries: u32) -> bool {
        let entries = entries as i64;
        self.sq_available.fetch_update(Ordering::AcqRel, Ordering::Acquire, |available| (available >= entries).then_some(available - entries)).is_ok()
    }

    fn give_back_send_queue(&self, entries: u32) {
        let after = self.sq_available.fetch_add(entries as i64, Ordering::AcqRel) + entries as i64;
        assert!(after <= self.shape.send_queue_depth as i64, "Send Queue entries given back twice ({after} available)");
    }

    fn wake_send_waiters(&self) {
        self.send_wake.fetch_add(1, Ordering::SeqCst);
        futex_wake(&self.send_wake, i32::MAX);
        // A waiter may be the poller, asleep in epoll_wait.
        self.queue.completions.wake();
    }

    /// Pulls a call's Read chunks (`segments`: the position-zero chunk's,
    /// then each data-item chunk's, in order) with RDMA Reads into one read
    /// buffer, laid end to end; waits up to `wait` for the buffer and Send
    /// Queue room, then up to `wait` for the Reads. The buffer stays held by
    /// `worker` until its release.
    pub fn read_chunks(&self, worker: usize, segments: &[RemoteSegment], wait: Duration) -> ReadOutcome {
        assert!(self.held_slots[worker * CALLS_PER_TAKE_MAX].load(Ordering::Acquire) >= 0, "worker {worker} reads chunks without a call");
        let Some(total) = checked_total(segments, self.chunks.chunk_bytes) else { return ReadOutcome::Refused };
        let reads = segments.len();
        if reads == 0 || reads > READS_PER_CALL_MAX || reads > self.shape.send_queue_depth as usize {
            return ReadOutcome::Refused;
        }
        let acquired = self.acquire(wait, || {
            let buffer = self.chunks.take_read(worker)?;
            if self.reserve_send_queue(reads as u32) {
                return Some(buffer);
            }
            self.chunks.release_read(worker);
            None
        });
        let Some(buffer) = acquired else {
            return if self.is_closing() { ReadOutcome::Failed } else { ReadOutcome::Busy };
        };
        self.chunks.reads_posting(buffer, reads as u32);
        if self.post_reads(buffer, segments).is_err() {
            self.chunks.reads_failed_to_post(buffer);
            self.counters.read_failures.fetch_add(1, Ordering::Relaxed);
            self.close();
            return ReadOutcome::Failed;
        }
        self.counters.read_calls.fetch_add(1, Ordering::Relaxed);
        self.counters.read_bytes.fetch_add(total as u64, Ordering::Relaxed);
        self.wait_reads(worker, wait)
    }

    /// Waits up to `wait` more for the Reads `worker` posted.
    pub fn wait_reads(&self, worker: usize, wait: Duration) -> ReadOutcome {
        let Some(buffer) = self.chunks.held_read(worker) else { return ReadOutcome::Failed };
        let sleep = |word: &AtomicU32, expected: u32, timeout: Duration| self.queue.wait_polling(word, expected, timeout);
        self.read_waiters.fetch_add(1, Ordering::SeqCst);
        // The last Read's completion is on the Send CQ: it must raise an event (or be here already).
        self.arm_send_events();
        let outcome = self.chunks.wait_reads(worker, wait, || self.is_closing(), sleep, |entries| {
            self.give_back_send_queue(entries);
            // Reads free Send Queue room without a release-list push: tell the waiters.
            if self.send_waiters.load(Ordering::SeqCst) > 0 {
                self.wake_send_waiters();
            }
        });
        self.read_waiters.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            ReadWait::Done => ReadOutcome::Done(buffer),
            ReadWait::InFlight if !self.is_closing() => ReadOutcome::InFlight,
            ReadWait::InFlight => ReadOutcome::Failed,
            ReadWait::Failed => {
                self.close();
                ReadOutcome::Failed
            }
        }
    }

    /// One RDMA Read per segment into `buffer`, end to end; only the last is
    /// signaled (an RC queue pair completes in order; a failure always reports).
    fn post_reads(&self, buffer: u32, segments: &[RemoteSegment]) -> Result<()> {
        let links = self.links.read().expect("links lock");
        let Some(links) = links.as_ref() else { return Err(VerbsError::closed("ServiceTransport")) };
        let mut offset = self.chunks.offset(buffer);
        for (index, segment) in segments.iter().enumerate() {
            let sge = links.chunk_region.sge(offset, segment.length as u64)?;
            let flags = if index + 1 == segments.len() { sys::IBV_SEND_SIGNALED } else { 0 };
            let request = SendRequest { wr_id: READ_WR_ID_BASE + buffer as u64, opcode: sys::IBV_WR_RDMA_READ, flags, sges: &[sge], remote_address: segment.address, rkey: segment.handle, immediate: 0 };
            self.cm_id.post_send(&request, &[Some(&links.chunk_region)])?;
            offset += segment.length as u64;
        }
        Ok(())
    }

    /// Posts `context`'s reply: an RDMA Write per entry of `writes` from its
    /// write buffer (sources end to end from its start), unsignaled, then the
    /// Send of `length` bytes of its buffer, signaled, wrId = context: one
    /// Send completion releases it all. False (the context freed at once,
    /// the seed's forward-path rule) when the transport is closing or a post
    /// failed (it closes). Err: a reply that does not match its reservation.
    pub fn post_reply(&self, worker: usize, context: u32, length: u32, writes: &[RemoteSegment]) -> Result<bool> {
        assert_eq!(self.held_contexts[worker].load(Ordering::Acquire), context as i64, "worker {worker} posts a context it does not hold");
        self.held_contexts[worker].store(-1, Ordering::Release);
        let reserved = self.context_work_requests[context as usize].load(Ordering::Acquire) as usize;
        let buffer = self.chunks.attached_write(context);
        let total = if writes.is_empty() { Some(0) } else { checked_total(writes, self.chunks.chunk_bytes) };
        if length > self.shape.context_bytes || writes.len() + 1 != reserved || writes.len() > WRITES_PER_REPLY_MAX || total.is_none() || (buffer.is_none() && !writes.is_empty()) {
            self.put_unposted(context);
            return Err(VerbsError::invalid(format!("a reply of {length} bytes and {} Writes does not match its send context ({reserved} work requests)", writes.len())));
        }
        let posted = !self.is_closing() && self.post_context(context, length, writes, buffer).is_ok();
        if !posted {
            self.counters.dropped_replies.fetch_add(1, Ordering::Relaxed);
            self.put_unposted(context);
            self.close();
        } else if !writes.is_empty() {
            self.counters.write_replies.fetch_add(1, Ordering::Relaxed);
            self.counters.written_bytes.fetch_add(total.unwrap_or(0) as u64, Ordering::Relaxed);
        }
        Ok(posted)
    }

    /// The inline replies (or RDMA_ERRORs) worker `worker` staged end to
    /// end in `staged`, `lengths` bytes each, in call order: a send context
    /// for each (the drain points of `get_send_context`), its bytes copied
    /// into it, and the Sends posted chained — one doorbell for all that got
    /// a context without waiting (a get that must wait posts the chain so
    /// far first: the contexts it waits for may be in it). Returns how many
    /// were posted; the others were dropped (no context in time, the
    /// transport closing, a post that failed: it closes) and counted.
    pub fn post_staged_replies(&self, staged: &[u8], lengths: &[u32], wait: Duration) -> Result<usize> {
        let context_bytes = self.shape.context_bytes as usize;
        if lengths.len() > CALLS_PER_TAKE_MAX || lengths.iter().any(|length| *length == 0 || *length as usize > context_bytes) {
            return Err(VerbsError::invalid(format!("at most {CALLS_PER_TAKE_MAX} staged replies of 1 to {context_bytes} bytes each")));
        }
        if lengths.iter().map(|length| *length as usize).sum::<usize>() > staged.len() {
            return Err(VerbsError::invalid("staged replies beyond the staging bytes"));
        }
        let mut chain: Vec<(u32, u32)> = Vec::with_capacity(lengths.len());
        let mut offset = 0;
        let mut posted = 0;
        for &length in lengths {
            let source = &staged[offset..offset + length as usize];
            offset += length as usize;
            let context = match self.try_send_resources(1, false) {
                Some((context, _)) => Some(context),
                None => {
                    posted += self.post_chain(&mut chain);
                    self.acquire(wait, || self.try_send_resources(1, false)).map(|(context, _)| context)
                }
            };
            let Some(context) = context else {
                self.counters.dropped_replies.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            self.claim_context(context, 1, None);
            // SAFETY: the context's buffer lies inside the send area and belongs to this call until it is posted (CONTEXT_BUILDING).
            unsafe { std::ptr::copy_nonoverlapping(source.as_ptr(), self.send_memory.pointer().add(context as usize * context_bytes), source.len()) };
            chain.push((context, length));
        }
        posted += self.post_chain(&mut chain);
        Ok(posted)
    }

    /// Posts the Sends of `chain` (context, length) in one doorbell and
    /// empties it; a context not posted goes back at once (the seed's
    /// forward-path rule) and the transport closes. Returns how many posted.
    fn post_chain(&self, chain: &mut Vec<(u32, u32)>) -> usize {
        if chain.is_empty() {
            return 0;
        }
        let posted = if self.is_closing() {
            0
        } else {
            let links = self.links.read().expect("links lock");
            links.as_ref().map_or(0, |links| self.post_sends(links, chain).0)
        };
        for &(context, _) in &chain[posted..] {
            self.counters.dropped_replies.fetch_add(1, Ordering::Relaxed);
            self.put_unposted(context);
        }
        if posted < chain.len() {
            self.close();
        }
        chain.clear();
        posted
    }

    /// Posts the Sends of `chain` (context, length of its buffer), signaled,
    /// wrId = context, in one doorbell: how many the provider took, and its
    /// error if it refused one. Each is counted in flight before the post (a
    /// completion may be routed before the post returns); one not posted is
    /// uncounted and stays the caller's (CONTEXT_BUILDING).
    fn post_sends(&self, links: &Links, chain: &[(u32, u32)]) -> (usize, Result<()>) {
        let context_bytes = self.shape.context_bytes as u64;
        let sges: Result<Vec<sys::ibv_sge>> = chain.iter().map(|&(context, length)| links.send_region.sge(context as u64 * context_bytes, length as u64)).collect();
        let sges = match sges {
            Ok(sges) => sges,
            Err(error) => return (0, Err(error)),
        };
        let wr_ids: Vec<u64> = chain.iter().map(|&(context, _)| context as u64).collect();
        for &(context, _) in chain {
            self.context_states[context as usize].store(CONTEXT_POSTED, Ordering::Release);
            self.sends_in_flight.fetch_add(1, Ordering::SeqCst);
        }
        let (posted, result) = self.cm_id.post_send_chain(&wr_ids, &sges, sys::IBV_WR_SEND, sys::IBV_SEND_SIGNALED, &links.send_region);
        for &(context, _) in &chain[posted..] {
            self.sends_in_flight.fetch_sub(1, Ordering::SeqCst);
            self.context_states[context as usize].store(CONTEXT_BUILDING, Ordering::Release);
        }
        (posted, result)
    }

    fn post_context(&self, context: u32, length: u32, writes: &[RemoteSegment], buffer: Option<u32>) -> Result<()> {
        let links = self.links.read().expect("links lock");
        let Some(links) = links.as_ref() else { return Err(VerbsError::closed("ServiceTransport")) };
        let mut offset = buffer.map_or(0, |buffer| self.chunks.offset(buffer));
        for write in writes {
            let sge = links.chunk_region.sge(offset, write.length as u64)?;
            let request = SendRequest { wr_id: WRITE_WR_ID, opcode: sys::IBV_WR_RDMA_WRITE, flags: 0, sges: &[sge], remote_address: write.address, rkey: write.handle, immediate: 0 };
            self.cm_id.post_send(&request, &[Some(&links.chunk_region)])?;
            offset += write.length as u64;
        }
        self.post_sends(links, &[(context, length)]).1
    }

    fn put_unposted(&self, context: u32) {
        let before = self.context_states[context as usize].swap(CONTEXT_FREE, Ordering::AcqRel);
        assert_eq!(before, CONTEXT_BUILDING, "send context {context} put back while not being built");
        self.free_context_resources(context);
        self.free_contexts.lock().expect("contexts lock").push(context);
    }

    /// What a context held besides itself: its Send Queue entries and its write buffer.
    fn free_context_resources(&self, context: u32) {
        self.give_back_send_queue(self.context_work_requests[context as usize].swap(0, Ordering::AcqRel));
        self.chunks.detach_write(context);
    }

    /// xpo_release_ctxt for worker `worker`: the Receive slots of the calls
    /// it took and its read buffer go back (the slots are posted again), then
    /// the release list is drained — between-rpcs after its RPCs, self-enqueue
    /// after an empty receive.
    pub fn release(&self, worker: usize) {
        assert!(self.using[worker].swap(false, Ordering::AcqRel), "worker {worker} releases without a receive");
        // A reply abandoned between its send context and its post (our error in the worker): the context goes back unposted.
        let context = self.held_contexts[worker].swap(-1, Ordering::AcqRel);
        if context >= 0 {
            self.put_unposted(context as u32);
        }
        let held_calls = self.free_held_slots(worker);
        if self.chunks.release_read(worker) && self.send_waiters.load(Ordering::SeqCst) > 0 {
            self.wake_send_waiters();
        }
        self.releases.fetch_add(1, Ordering::SeqCst);
        self.drain(if held_calls { DrainPoint::BetweenRpcs } else { DrainPoint::SelfEnqueue });
        self.users.fetch_sub(1, Ordering::AcqRel);
        self.queue.leave(worker);
    }

    /// A worker died (the main thread repairs): what it held goes back, and
    /// the transport is given to others if it owned BUSY.
    pub fn worker_died(&self, worker: usize, owned_busy: bool) {
        let context = self.held_contexts[worker].swap(-1, Ordering::AcqRel);
        if context >= 0 {
            self.put_unposted(context as u32);
        }
        self.free_held_slots(worker);
        // Kept (until the teardown) if its Reads may still land.
        self.chunks.release_read(worker);
        if self.using[worker].swap(false, Ordering::AcqRel) {
            self.users.fetch_sub(1, Ordering::AcqRel);
        }
        if owned_busy {
            self.flags.clear(BUSY);
            self.enqueue();
        }
    }

    /// Drains the release list in one batch: contexts back to the free list,
    /// their Send Queue entries and write buffers with them (the chunk I/O
    /// teardown of the seed's drain). Returns how many.
    pub fn drain(&self, point: DrainPoint) -> usize {
        let list = self.release_list();
        let mut released = Vec::with_capacity(self.shape.contexts_max as usize);
        let count = list.drain(self.shape.contexts_max as usize, |value| released.push(value));
        let mut free = self.free_contexts.lock().expect("contexts lock");
        for value in released {
            if value & FAILED_BIT != 0 {
                self.counters.failed_sends.fetch_add(1, Ordering::Relaxed);
            }
            let context = (value & !FAILED_BIT) as u32;
            let before = self.context_states[context as usize].swap(CONTEXT_FREE, Ordering::AcqRel);
            assert_eq!(before, CONTEXT_POSTED, "release of send context {context} that is not posted");
            self.free_context_resources(context);
            free.push(context);
        }
        drop(free);
        if count > 0 {
            self.counters.drains[point as usize].fetch_add(1, Ordering::Relaxed);
            self.counters.released[point as usize].fetch_add(count as u64, Ordering::Relaxed);
            let bucket = BATCH_BUCKETS.iter().position(|bound| count <= *bound).expect("open last bucket");
            self.counters.batch_sizes[bucket].fetch_add(1, Ordering::Relaxed);
            if self.send_waiters.load(Ordering::SeqCst) > 0 {
                self.wake_send_waiters();
            }
        }
        if list.is_closing() {
            self.close();
        }
        count
    }

    /// XPT_CLOSE: no new posts, workers give up; the main thread is told once.
    pub fn close(&self) {
        if self.flags.set(CLOSE) & CLOSE == 0 {
            self.wake_send_waiters();
            if let Some(on_close) = &self.on_close {
                on_close();
            }
        }
    }

    /// ib_drain_qp on the transport's queue pair; `done` runs once both markers were polled.
    pub fn drain_queue_pair(&self, done: Waker) -> Result<()> {
        self.draining.store(true, Ordering::SeqCst);
        self.cm_id.drain(done)?;
        // The markers' completions (and the flushed Sends before them) must raise an event.
        self.arm_send_events();
        Ok(())
    }

    pub fn is_closing(&self) -> bool {
        self.flags.get() & CLOSE != 0
    }

    /// No worker uses the transport and none owns its receive step.
    pub fn is_idle(&self) -> bool {
        self.users.load(Ordering::Acquire) == 0 && self.flags.get() & BUSY == 0
    }

    /// The seed's teardown, after the queue pair was drained (every posted
    /// Send's completion is on the release list): drain (teardown), flush
    /// the Receives, reclaim still-posted contexts only if the drain did not
    /// finish (`reclaim_posted`: the QP is destroyed first), destroy the QP,
    /// let the CQs and regions go. Returns the contexts still in use (a leak).
    pub fn finish(&self, reclaim_posted: bool) -> u32 {
        self.close();
        if reclaim_posted {
            self.cm_id.destroy_queue_pair();
        }
        self.drain(DrainPoint::Teardown);
        // Every Read completed or was flushed by now (or the QP is gone).
        self.chunks.reclaim_abandoned_reads();
        self.receives.drain(usize::MAX, |_| {});
        if reclaim_posted {
            for (context, state) in self.context_states.iter().enumerate() {
                if state.compare_exchange(CONTEXT_POSTED, CONTEXT_FREE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    self.counters.lost_sends.fetch_add(1, Ordering::Relaxed);
                    self.free_context_resources(context as u32);
                    self.free_contexts.lock().expect("contexts lock").push(context as u32);
                }
            }
        }
        self.cm_id.destroy_queue_pair();
        let mut links = self.links.write().expect("links lock");
        if let Some(links) = links.as_ref() {
            self.unwatch(links.channel_fds);
        }
        // Destroys the CQs and their channels and deregisters the memory.
        drop(links.take());
        drop(links);
        registry().transports.lock().expect("registry lock").remove(&self.id);
        self.contexts_in_use()
    }

    /// Contexts not on the free list: being built, posted or on the release list.
    pub fn contexts_in_use(&self) -> u32 {
        self.context_states.iter().filter(|state| state.load(Ordering::Acquire) != CONTEXT_FREE).count() as u32
    }

    /// Registrations held now (3 while the transport lives, 0 after `finish`).
    pub fn open_registrations(&self) -> u32 {
        if self.links.read().expect("links lock").is_some() { 3 } else { 0 }
    }

    /// Completed Receives not yet taken by a worker (a snapshot).
    pub fn queued_receives(&self) -> usize {
        self.receives.len()
    }

    /// Completed Sends on the release list, not yet drained (a snapshot).
    pub fn release_pending(&self) -> usize {
        self.release_list().len()
    }

    pub fn posted_receives(&self) -> u32 {
        self.posted_receives.load(Ordering::Acquire)
    }

    pub fn allocated_contexts(&self) -> u32 {
        self.allocated_contexts.load(Ordering::Acquire)
    }

    fn release_list(&self) -> &Arc<ReleaseList> {
        self.release_list.get().expect("release list set at creation")
    }

    fn pop_free_context(&self) -> Option<u32> {
        self.free_contexts.lock().expect("contexts lock").pop()
    }

    /// A context never used before, up to the bound (its buffer is part of the registered area).
    fn allocate_context(&self) -> Option<u32> {
        let claimed = self.allocated_contexts.fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| (count < self.shape.contexts_max).then_some(count + 1));
        let context = claimed.ok()?;
        self.counters.allocations.fetch_add(1, Ordering::Relaxed);
        Some(context)
    }

    fn free_slot(&self, slot: u32) {
        self.free_slots.lock().expect("slots lock").push(slot);
    }

    /// Posts free slots until `credits` Receives are posted (not while closing).
    fn post_receives(&self) -> Result<()> {
        let links = self.links.read().expect("links lock");
        let Some(links) = links.as_ref() else { return Ok(()) };
        let mut free = self.free_slots.lock().expect("slots lock");
        while !self.is_closing() && self.posted_receives.load(Ordering::Acquire) < self.shape.credits {
            let Some(slot) = free.pop() else { break };
            let offset = slot as u64 * self.shape.slot_bytes as u64;
            let sge = links.receive_region.sge(offset, self.shape.slot_bytes as u64)?;
            self.posted_receives.fetch_add(1, Ordering::AcqRel);
            if let Err(error) = self.cm_id.post_recv(slot as u64, &[sge], &[Some(&links.receive_region)]) {
                self.posted_receives.fetch_sub(1, Ordering::AcqRel);
                free.push(slot);
                return Err(error);
            }
        }
        Ok(())
    }
}

/// Queues and transports by id, reachable from every thread (isolate).
pub struct Registry {
    pub queues: Mutex<HashMap<u64, Arc<ServiceQueue>>>,
    pub transports: Mutex<HashMap<u64, Arc<ServiceTransport>>>,
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry { queues: Mutex::new(HashMap::new()), transports: Mutex::new(HashMap::new()) })
}

/// Ids for queues and transports (never reused in a process; exact in a JavaScript number).
pub fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_beyond_their_bounds_are_refused() {
        let shape = TransportShape { credits: 64, slot_bytes: 4096, contexts_max: 128, context_bytes: 4096, send_queue_depth: 256, busy_poll: Duration::ZERO, chunk_bytes: 1 << 20 };
        assert!(shape.check().is_ok());
        assert!(TransportShape { contexts_max: 257, ..shape }.check().is_err(), "contexts must bound the Send Queue's use");
        assert!(TransportShape { credits: 0, ..shape }.check().is_err());
        assert!(TransportShape { slot_bytes: BUFFER_BYTES_MAX + 1, ..shape }.check().is_err());
        assert!(TransportShape { chunk_bytes: CHUNK_BYTES_MAX + 1, ..shape }.check().is_err(), "chunk buffers are bounded");
    }

    #[test]
    fn area_memory_is_zeroed_and_sized() {
        let area = AreaMemory::new(8192);
        assert_eq!(area.length(), 8192);
        // SAFETY: the area is 8192 bytes, alive for the test.
        let bytes = unsafe { std::slice::from_raw_parts(area.pointer(), area.length()) };
        assert!(bytes.iter().all(|byte| *byte == 0));
    }
}
