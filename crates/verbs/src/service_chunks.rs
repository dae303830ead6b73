//! Chunk buffers of a service transport: the registered memory a worker
//! thread pulls a call's Read chunks into (RDMA Read) and pushes a reply's
//! Write chunks and Reply chunk from (RDMA Write) — svc_rdma_rw.c's job,
//! with buffers owned by the transport instead of the RPC's pages, because a
//! worker's JavaScript memory cannot outlive its isolate nor be released by
//! another worker's drain.
//!
//! What it owns: one area of `READ_BUFFERS + WRITE_BUFFERS` buffers of
//! `chunk_bytes` each (read buffers first), registered once by the transport
//! and seen by every worker as one external ArrayBuffer.
//!
//! Life of a read buffer: taken by the worker that serves a call with a Read
//! list (`take_read`), Reads posted into it (POSTED), its state set DONE or
//! FAILED by whoever routes the Send CQ's completions (an atomic store and
//! a futex wake, nothing else: service_completions.rs), held while the RPC is processed and given back by
//! that worker's release (xpo_release_ctxt). A buffer whose Reads may still
//! land (the worker gave up waiting because the transport closed) is given
//! back only by the teardown, after the queue pair was drained.
//!
//! Life of a write buffer: taken with a send context (`take_write`), filled
//! by the worker, attached to the context; the Writes posted from it are
//! unsignaled and chained before the context's signaled Send, so the Send's
//! completion proves them done; the drain that releases the context gives the
//! buffer back (the seed: chunk I/O resources torn down in the drain, never
//! on the completion path).
//!
//! Threads: free lists behind mutexes taken by workers and the main thread
//! only; completion routing only stores a read state and wakes.

use crate::service_queue::{futex_wake, WORKERS_MAX};
use crate::service_transport::AreaMemory;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Read buffers per transport: calls with a Read list in service at once on
/// one connection; more wait (bounded) for a release. Two keep two workers
/// busy on one connection's WRITEs without pinning megabytes per connection.
pub const READ_BUFFERS: u32 = 2;
/// Write buffers per transport: replies with RDMA Writes posted and not yet
/// drained on one connection; more wait (bounded) for a drain, as for contexts.
pub const WRITE_BUFFERS: u32 = 2;
/// Largest chunk buffer: svcrdma asks for its largest Read list / Reply
/// chunk (1 MiB of payload + 8 KiB of headers); this leaves room, not more.
pub const CHUNK_BYTES_MAX: u32 = 4 << 20;
/// Most RDMA Reads one call may post: svcrdma's decoder allows 258 Read
/// segments (1 MiB in pages + 2); each takes a Send Queue entry until done.
pub const READS_PER_CALL_MAX: usize = 512;
/// Most RDMA Writes one reply may post: svcrdma's decoder allows 1290 Write
/// segments in all chunks; each takes a Send Queue entry until the drain.
pub const WRITES_PER_REPLY_MAX: usize = 2048;

/// wrIds of RDMA Writes: at the Send CQ's release limit (2^40), so a Write
/// never reaches the release list; unsignaled, so only a failure reports one.
pub const WRITE_WR_ID: u64 = 1 << 40;
/// wrIds of RDMA Reads: READ_WR_ID_BASE + read buffer.
pub const READ_WR_ID_BASE: u64 = 1 << 41;

const READ_FREE: u8 = 0;
/// Taken by a worker, no Read posted.
const READ_TAKEN: u8 = 1;
const READ_POSTED: u8 = 2;
const READ_DONE: u8 = 3;
const READ_FAILED: u8 = 4;

/// How a worker's wait for its Reads ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadWait {
    Done,
    Failed,
    InFlight,
}

/// One remote segment: R_key, bytes, remote address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteSegment {
    pub handle: u32,
    pub length: u32,
    pub address: u64,
}

/// Sum of the segments' lengths if all are non-empty, within `limit` and not
/// wrapping the remote address space; None for a hostile list.
pub fn checked_total(segments: &[RemoteSegment], limit: u32) -> Option<u32> {
    let mut total: u32 = 0;
    for segment in segments {
        if segment.length == 0 || segment.address.checked_add(segment.length as u64).is_none() {
            return None;
        }
        total = total.checked_add(segment.length).filter(|total| *total <= limit)?;
    }
    Some(total)
}

/// The chunk buffers of one transport.
pub struct ChunkBuffers {
    pub memory: Arc<AreaMemory>,
    pub chunk_bytes: u32,
    free_reads: Mutex<Vec<u32>>,
    free_writes: Mutex<Vec<u32>>,
    read_states: Box<[AtomicU8]>,
    /// Send Queue entries each read buffer's Reads took (given back when done).
    read_work_requests: Box<[AtomicU32]>,
    /// The read buffer each worker holds (-1 none).
    held_reads: Box<[AtomicI64]>,
    /// The write buffer each send context holds (-1 none).
    context_writes: Box<[AtomicI64]>,
    read_wake: AtomicU32,
}

impl ChunkBuffers {
    pub fn new(chunk_bytes: u32, contexts_max: u32) -> ChunkBuffers {
        assert!(chunk_bytes <= CHUNK_BYTES_MAX, "chunk buffers of {chunk_bytes} bytes exceed CHUNK_BYTES_MAX");
        ChunkBuffers {
            memory: AreaMemory::new(((READ_BUFFERS + WRITE_BUFFERS) * chunk_bytes) as usize),
            chunk_bytes,
            free_reads: Mutex::new((0..READ_BUFFERS).rev().collect()),
            free_writes: Mutex::new((READ_BUFFERS..READ_BUFFERS + WRITE_BUFFERS).rev().collect()),
            read_states: (0..READ_BUFFERS).map(|_| AtomicU8::new(READ_FREE)).collect(),
            read_work_requests: (0..READ_BUFFERS).map(|_| AtomicU32::new(0)).collect(),
            held_reads: (0..WORKERS_MAX).map(|_| AtomicI64::new(-1)).collect(),
            context_writes: (0..contexts_max).map(|_| AtomicI64::new(-1)).collect(),
            read_wake: AtomicU32::new(0),
        }
    }

    /// Byte offset of `buffer` in the area.
    pub fn offset(&self, buffer: u32) -> u64 {
        buffer as u64 * self.chunk_bytes as u64
    }

    /// A read buffer for `worker`'s call, or None if all are in use.
    pub fn take_read(&self, worker: usize) -> Option<u32> {
        assert_eq!(self.held_reads[worker].load(Ordering::Acquire), -1, "worker {worker} takes a second read buffer");
        let buffer = self.free_reads.lock().expect("chunk lock").pop()?;
        let before = self.read_states[buffer as usize].swap(READ_TAKEN, Ordering::AcqRel);
        assert_eq!(before, READ_FREE, "read buffer {buffer} handed out while in use");
        self.held_reads[worker].store(buffer as i64, Ordering::Release);
        Some(buffer)
    }

    /// The read buffer `worker` holds, if any.
    pub fn held_read(&self, worker: usize) -> Option<u32> {
        u32::try_from(self.held_reads[worker].load(Ordering::Acquire)).ok()
    }

    /// The Reads into `buffer` are about to be posted, taking `work_requests` Send Queue entries.
    pub fn reads_posting(&self, buffer: u32, work_requests: u32) {
        self.read_work_requests[buffer as usize].store(work_requests, Ordering::Release);
        let before = self.read_states[buffer as usize].swap(READ_POSTED, Ordering::AcqRel);
        assert_eq!(before, READ_TAKEN, "Reads posted into read buffer {buffer} twice");
    }

    /// Posting failed part-way: the buffer's Reads end as failed.
    pub fn reads_failed_to_post(&self, buffer: u32) {
        self.read_states[buffer as usize].store(READ_FAILED, Ordering::Release);
    }

    /// A Read completion (completion routing): only the last Read of a call
    /// is signaled, an earlier one reports only a failure (or flush). Stores
    /// the outcome and wakes the waiting worker; nothing else.
    pub fn on_read_completion(&self, wr_id: u64, succeeded: bool) {
        let buffer = (wr_id - READ_WR_ID_BASE) as usize;
        let outcome = if succeeded { READ_DONE } else { READ_FAILED };
        // A failure is never overwritten by a later completion of the same call.
        let _ = self.read_states[buffer].compare_exchange(READ_POSTED, outcome, Ordering::AcqRel, Ordering::Acquire);
        self.read_wake.fetch_add(1, Ordering::SeqCst);
        futex_wake(&self.read_wake, i32::MAX);
    }

    /// True for a wrId naming one of our Reads.
    pub fn is_read_wr_id(wr_id: u64) -> bool {
        (READ_WR_ID_BASE..READ_WR_ID_BASE + READ_BUFFERS as u64).contains(&wr_id)
    }

    /// Waits up to `timeout` for the Reads into `worker`'s buffer to end,
    /// in `sleep`s on the read futex word (which may route completions
    /// meanwhile); when they did, returns their Send Queue entries (`give_back`).
    pub fn wait_reads(&self, worker: usize, timeout: Duration, closing: impl Fn() -> bool, sleep: impl Fn(&AtomicU32, u32, Duration), give_back: impl FnOnce(u32)) -> ReadWait {
        let buffer = self.held_read(worker).expect("a read wait without a read buffer") as usize;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let sequence = self.read_wake.load(Ordering::SeqCst);
            // Looked at before the state: a failed Read is stored before the close it causes, so a
            // wait that sees that close also sees the failure (and is not taken for a Read in flight).
            let closing = closing();
            match self.read_states[buffer].load(Ordering::Acquire) {
                READ_DONE => {
                    give_back(self.read_work_requests[buffer].swap(0, Ordering::AcqRel));
                    return ReadWait::Done;
                }
                READ_FAILED => return ReadWait::Failed,
                state => assert_eq!(state, READ_POSTED, "waiting for Reads never posted into read buffer {buffer}"),
            }
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            if remaining.is_zero() || closing {
                return ReadWait::InFlight;
            }
            sleep(&self.read_wake, sequence, remaining);
        }
    }

    /// xpo_release_ctxt's part: `worker`'s read buffer goes back, unless its
    /// Reads may still land (the teardown gives it back). True if freed.
    pub fn release_read(&self, worker: usize) -> bool {
        let held = self.held_reads[worker].swap(-1, Ordering::AcqRel);
        let Ok(buffer) = u32::try_from(held) else { return false };
        let state = &self.read_states[buffer as usize];
        if state.load(Ordering::Acquire) == READ_POSTED {
            return false;
        }
        state.store(READ_FREE, Ordering::Release);
        self.free_reads.lock().expect("chunk lock").push(buffer);
        true
    }

    /// A write buffer, or None if all are attached to contexts not yet drained.
    pub fn take_write(&self) -> Option<u32> {
        self.free_writes.lock().expect("chunk lock").pop()
    }

    /// A write buffer goes back without having been attached (a failed acquisition).
    pub fn put_write(&self, buffer: u32) {
        self.free_writes.lock().expect("chunk lock").push(buffer);
    }

    pub fn attach_write(&self, context: u32, buffer: u32) {
        let before = self.context_writes[context as usize].swap(buffer as i64, Ordering::AcqRel);
        assert_eq!(before, -1, "send context {context} already holds a write buffer");
    }

    pub fn attached_write(&self, context: u32) -> Option<u32> {
        u32::try_from(self.context_writes[context as usize].load(Ordering::Acquire)).ok()
    }

    /// The drain's (or the forward path's) part: the context's write buffer goes back.
    pub fn detach_write(&self, context: u32) {
        if let Ok(buffer) = u32::try_from(self.context_writes[context as usize].swap(-1, Ordering::AcqRel)) {
            self.put_write(buffer);
        }
    }

    /// Teardown, after the queue pair was drained (every Read completed or
    /// was flushed): read buffers no worker holds go back.
    pub fn reclaim_abandoned_reads(&self) {
        let held: Vec<i64> = self.held_reads.iter().map(|held| held.load(Ordering::Acquire)).collect();
        let mut free = self.free_reads.lock().expect("chunk lock");
        for (buffer, state) in self.read_states.iter().enumerate() {
            if state.load(Ordering::Acquire) != READ_FREE && !held.contains(&(buffer as i64)) {
                state.store(READ_FREE, Ordering::Release);
                free.push(buffer as u32);
            }
        }
    }

    /// Buffers not free: read buffers taken, write buffers attached.
    pub fn in_use(&self) -> u32 {
        let reads = READ_BUFFERS as usize - self.free_reads.lock().expect("chunk lock").len();
        let writes = WRITE_BUFFERS as usize - self.free_writes.lock().expect("chunk lock").len();
        (reads + writes) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_queue::futex_wait;

    fn segment(length: u32, address: u64) -> RemoteSegment {
        RemoteSegment { handle: 1, length, address }
    }

    #[test]
    fn hostile_segment_lists_have_no_total() {
        assert_eq!(checked_total(&[segment(10, 0), segment(20, 100)], 30), Some(30));
        assert_eq!(checked_total(&[segment(10, 0), segment(21, 100)], 30), None, "beyond the buffer");
        assert_eq!(checked_total(&[segment(0, 0)], 30), None, "an empty segment");
        assert_eq!(checked_total(&[segment(8, u64::MAX - 4)], 30), None, "a wrapping address");
        assert_eq!(checked_total(&[segment(u32::MAX, 0), segment(2, 0)], u32::MAX), None, "an overflowing sum");
    }

    #[test]
    fn read_buffers_go_back_only_when_their_reads_cannot_land() {
        let chunks = ChunkBuffers::new(4096, 4);
        let first = chunks.take_read(0).unwrap();
        let second = chunks.take_read(1).unwrap();
        assert_eq!(chunks.take_read(2), None, "bounded by READ_BUFFERS");
        chunks.reads_posting(first, 3);
        chunks.on_read_completion(READ_WR_ID_BASE + first as u64, true);
        let mut given_back = 0;
        assert_eq!(chunks.wait_reads(0, Duration::ZERO, || false, futex_wait, |entries| given_back = entries), ReadWait::Done);
        assert_eq!(given_back, 3);
        assert!(chunks.release_read(0));
        chunks.reads_posting(second, 1);
        assert_eq!(chunks.wait_reads(1, Duration::ZERO, || true, futex_wait, |_| unreachable!()), ReadWait::InFlight);
        assert!(!chunks.release_read(1), "its Read may still land");
        assert_eq!(chunks.in_use(), 1);
        chunks.reclaim_abandoned_reads();
        assert_eq!(chunks.in_use(), 0);
    }

    #[test]
    fn a_failed_read_is_not_overwritten_by_the_flush_of_the_last() {
        let chunks = ChunkBuffers::new(4096, 4);
        let buffer = chunks.take_read(0).unwrap();
        chunks.reads_posting(buffer, 2);
        chunks.on_read_completion(READ_WR_ID_BASE + buffer as u64, false);
        chunks.on_read_completion(READ_WR_ID_BASE + buffer as u64, true);
        assert_eq!(chunks.wait_reads(0, Duration::ZERO, || false, futex_wait, |_| unreachable!()), ReadWait::Failed);
    }

    #[test]
    fn a_read_failure_that_closes_the_transport_during_the_wait_is_reported_as_failed() {
        let chunks = ChunkBuffers::new(4096, 4);
        let buffer = chunks.take_read(0).unwrap();
        chunks.reads_posting(buffer, 1);
        // Completion routing stores the failure, then closes, while the worker is between its looks.
        let closing = || {
            chunks.on_read_completion(READ_WR_ID_BASE + buffer as u64, false);
            true
        };
        assert_eq!(chunks.wait_reads(0, Duration::from_secs(1), closing, futex_wait, |_| unreachable!()), ReadWait::Failed);
    }

    #[test]
    fn write_buffers_follow_their_context() {
        let chunks = ChunkBuffers::new(4096, 4);
        let buffer = chunks.take_write().unwrap();
        assert!(buffer >= READ_BUFFERS);
        chunks.attach_write(3, buffer);
        assert_eq!(chunks.attached_write(3), Some(buffer));
        assert_eq!(chunks.in_use(), 1);
        chunks.detach_write(3);
        assert_eq!(chunks.attached_write(3), None);
        assert_eq!(chunks.in_use(), 0);
    }
}
