//! The service queue and service transports (service_queue.rs,
//! service_transport.rs) for JavaScript: flat functions over ids, callable
//! from the main thread and from every worker thread (the objects live in
//! the process-wide registry, not in one environment's handles).
//!
//! Main thread: `serviceQueueCreate(callsPerTake)` (starts the queue's backstop thread),
//! `serviceQueueClose`, `serviceQueueVacate` (a worker died),
//! `serviceTransportCreate` (on an adopted CmId, before
//! accept), `serviceTransportClose`, `serviceTransportIdle`,
//! `serviceTransportDrainQueuePair`, `serviceTransportFinish`.
//! Workers: `serviceQueueSeatArea` (once), `serviceQueueTake` (blocks up
//! to waitMs; the call's Receive in the seat's mailbox, its receive step
//! ended: svc_xprt_received), `serviceTransportBuffers`,
//! `serviceTransportReadChunks` and `serviceTransportReadWait` (block up to
//! waitMs), `serviceTransportGetSendContext` (may block up to waitMs; only
//! for a reply with Writes), `serviceTransportFinishCall` (post, release,
//! take the next calls: one crossing per take for inline replies),
//! `serviceTransportPostReplies` (post before the release).
//!
//! Segment lists (Read chunks to pull, Writes to post) cross as a
//! Uint32Array of [handle, length, address high word, address low word] per
//! segment: no object per segment, nothing kept after the call.
//! Any thread: `serviceQueueStats`, `serviceTransportMetrics`.

use super::cm_id::KIND as CM_ID_KIND;
use super::protection_domain::pd_arg;
use super::set_number;
use crate::cm_id::CmId;
use crate::error::{Result, VerbsError};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::unwrap;
use crate::napi::sys::*;
use crate::napi::threadsafe::javascript_waker;
use crate::napi::Env;
use crate::service_backstop;
use crate::service_chunks::{RemoteSegment, READ_BUFFERS, WRITES_PER_REPLY_MAX};
use crate::service_queue::{ServiceQueue, TAKE_WAIT_MAX, WORKERS_MAX};
use crate::service_call_header::{PlainCallHeader, PLAIN_HEADER_BYTES as PLAIN_CALL_HEADER_BYTES};
use crate::service_seat::{call_word, BYTE_LENGTH, CALLS, CALLS_PER_TAKE_MAX, PLAIN_CREDITS, PLAIN_HEADER_BYTES, PLAIN_XID, REPLY_LENGTHS, SLOT, STAGING_BYTES};
use crate::service_transport::{next_id, registry, AreaMemory, DrainPoint, ReadOutcome, ServiceTransport, TransportShape, BATCH_BUCKETS, BUFFER_BYTES_MAX};
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Longest a staged reply waits for a send context (as long as a take may block).
const SEND_CONTEXT_WAIT: Duration = TAKE_WAIT_MAX;
/// A send context is returned as one number: (write buffer + 1) * CONTEXT_FACTOR + context.
const CONTEXT_FACTOR: f64 = 4_294_967_296.0;
/// Words per segment in a segment list.
const SEGMENT_WORDS: usize = 4;

/// What `serviceTransportReadChunks` / `serviceTransportReadWait` return
/// besides a read buffer's index (>= 0).
const READ_FAILED: f64 = -1.0;
const READ_BUSY: f64 = -2.0;
const READ_IN_FLIGHT: f64 = -3.0;
const READ_REFUSED: f64 = -4.0;

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "serviceQueueCreate", service_queue_create)?;
    export(env, exports, "serviceQueueTake", service_queue_take)?;
    export(env, exports, "serviceQueueSeatArea", service_queue_seat_area)?;
    export(env, exports, "serviceQueueVacate", service_queue_vacate)?;
    export(env, exports, "serviceQueueStats", service_queue_stats)?;
    export(env, exports, "serviceQueueClose", service_queue_close)?;
    export(env, exports, "serviceTransportCreate", service_transport_create)?;
    export(env, exports, "serviceTransportBuffers", service_transport_buffers)?;
    export(env, exports, "serviceTransportReadChunks", service_transport_read_chunks)?;
    export(env, exports, "serviceTransportReadWait", service_transport_read_wait)?;
    export(env, exports, "serviceTransportGetSendContext", service_transport_get_send_context)?;
    export(env, exports, "serviceTransportFinishCall", service_transport_finish_call)?;
    export(env, exports, "serviceTransportPostReplies", service_transport_post_replies)?;
    export(env, exports, "serviceTransportClose", service_transport_close)?;
    export(env, exports, "serviceTransportIdle", service_transport_idle)?;
    export(env, exports, "serviceTransportDrainQueuePair", service_transport_drain_queue_pair)?;
    export(env, exports, "serviceTransportFinish", service_transport_finish)?;
    export(env, exports, "serviceTransportMetrics", service_transport_metrics)
}

fn id_arg(env: Env, value: napi_value, name: &str) -> Result<u64> {
    env.to_integer(value, name, (1u64 << 53) - 1)
}

fn worker_arg(env: Env, value: napi_value) -> Result<usize> {
    Ok(env.to_integer(value, "worker", WORKERS_MAX as u64 - 1)? as usize)
}

fn wait_arg(env: Env, value: napi_value) -> Result<Duration> {
    Ok(Duration::from_millis(env.to_integer(value, "waitMs", TAKE_WAIT_MAX.as_millis() as u64)?))
}

fn queue(id: u64) -> Result<Arc<ServiceQueue>> {
    registry().queues.lock().expect("registry lock").get(&id).cloned().ok_or_else(|| VerbsError::closed("ServiceQueue"))
}

fn transport(id: u64) -> Result<Arc<ServiceTransport>> {
    registry().transports.lock().expect("registry lock").get(&id).cloned().ok_or_else(|| VerbsError::closed("ServiceTransport"))
}

fn transport_arg(env: Env, arguments: &Arguments) -> Result<Arc<ServiceTransport>> {
    transport(id_arg(env, arguments.get(0), "transportId")?)
}

/// `serviceQueueCreate(callsPerTake) -> queueId`: takes receive up to
/// `callsPerTake` calls of one transport at once (1..=CALLS_PER_TAKE_MAX).
fn service_queue_create(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let calls_per_take = env.to_integer(arguments.get(0), "callsPerTake", CALLS_PER_TAKE_MAX as u64)? as usize;
    let id = next_id();
    let queue = Arc::new(ServiceQueue::with_calls_per_take(calls_per_take)?);
    service_backstop::start(queue.clone())?;
    registry().queues.lock().expect("registry lock").insert(id, queue);
    env.number(id as f64)
}

/// `serviceQueueTake(queueId, worker, waitMs) -> transportId | 0` (blocks): a
/// transport with calls to serve, their Receives in the seat's mailbox
/// (CALLS, then per call SLOT, BYTE_LENGTH; PLAIN_HEADER_BYTES, PLAIN_XID,
/// PLAIN_CREDITS for a plain call, else PLAIN_HEADER_BYTES 0) and its
/// receive step ended; empty receives are served natively.
fn service_queue_take(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let queue = queue(id_arg(env, arguments.get(0), "queueId")?)?;
    take_call(env, &queue, worker_arg(env, arguments.get(1))?, wait_arg(env, arguments.get(2))?)
}

/// Takes the next call for `worker` (none if `wait` is zero): its transport's id or 0.
fn take_call(env: Env, queue: &ServiceQueue, worker: usize, wait: Duration) -> Result<napi_value> {
    if wait.is_zero() {
        return env.number(0.0);
    }
    let Some((id, receives)) = ServiceTransport::take_call(queue, worker, wait) else { return env.number(0.0) };
    let seat = queue.seat_area(worker);
    seat.put(CALLS, receives.len() as u32);
    for (index, receive) in receives.iter().enumerate() {
        seat.put(call_word(index, SLOT), receive.slot);
        seat.put(call_word(index, BYTE_LENGTH), receive.byte_length);
        let plain = receive.plain.unwrap_or(PlainCallHeader { xid: 0, credits: 0 });
        seat.put(call_word(index, PLAIN_HEADER_BYTES), if receive.plain.is_some() { PLAIN_CALL_HEADER_BYTES as u32 } else { 0 });
        seat.put(call_word(index, PLAIN_XID), plain.xid);
        seat.put(call_word(index, PLAIN_CREDITS), plain.credits);
    }
    env.number(id as f64)
}

/// `serviceQueueSeatArea(queueId, worker) -> ArrayBuffer`: the seat's
/// mailbox and staging bytes (service_seat.rs), the same for every worker on the seat.
fn service_queue_seat_area(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let queue = queue(id_arg(env, arguments.get(0), "queueId")?)?;
    external_area(env, queue.seat_area(worker_arg(env, arguments.get(1))?).memory())
}

/// `serviceQueueVacate(queueId, worker) -> transportId | 0`: a worker died;
/// what it held goes back and its transport is served by others.
fn service_queue_vacate(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let queue = queue(id_arg(env, arguments.get(0), "queueId")?)?;
    let worker = worker_arg(env, arguments.get(1))?;
    let (id, owned_busy) = queue.vacate(worker);
    if let Ok(transport) = transport(id) {
        transport.worker_died(worker, owned_busy);
    }
    env.number(id as f64)
}

fn service_queue_stats(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let queue = queue(id_arg(env, arguments.get(0), "queueId")?)?;
    let stats = env.object()?;
    let counters = &queue.counters;
    set_number(env, stats, "enqueues", counters.enqueues.load(Ordering::Relaxed) as f64)?;
    set_number(env, stats, "takes", counters.takes.load(Ordering::Relaxed) as f64)?;
    set_number(env, stats, "sleeps", counters.sleeps.load(Ordering::Relaxed) as f64)?;
    set_number(env, stats, "timeouts", counters.timeouts.load(Ordering::Relaxed) as f64)?;
    set_number(env, stats, "queued", queue.len() as f64)?;
    Ok(stats)
}

fn service_queue_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let id = id_arg(env, arguments.get(0), "queueId")?;
    if let Some(queue) = registry().queues.lock().expect("registry lock").remove(&id) {
        queue.close();
    }
    env.undefined()
}

/// `serviceTransportCreate(queueId, cmId, protectionDomain, credits, slotBytes,
/// contextsMax, contextBytes, sendQueueDepth, busyPollMicros, chunkBytes, onClose) -> transportId`
fn service_transport_create(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let queue = queue(id_arg(env, arguments.get(0), "queueId")?)?;
    let cm_id: Arc<CmId> = unwrap::<Arc<CmId>>(env, arguments.get(1), "cmId", CM_ID_KIND)?.get()?.clone();
    let pd = pd_arg(env, arguments.get(2))?.get()?.clone();
    let shape = TransportShape {
        credits: env.to_u32(arguments.get(3), "credits")?,
        slot_bytes: env.to_u32(arguments.get(4), "slotBytes")?,
        contexts_max: env.to_u32(arguments.get(5), "contextsMax")?,
        context_bytes: env.to_u32(arguments.get(6), "contextBytes")?,
        send_queue_depth: env.to_u32(arguments.get(7), "sendQueueDepth")?,
        busy_poll: Duration::from_micros(env.to_integer(arguments.get(8), "busyPollMicros", 100_000)?),
        chunk_bytes: env.to_u32(arguments.get(9), "chunkBytes")?,
    };
    let on_close = arguments.get(10);
    if env.type_of(on_close)? != NAPI_FUNCTION {
        return Err(VerbsError::arg_type("onClose", "a function"));
    }
    let (waker, callback) = javascript_waker(env, on_close, "roce-verbs service transport closing")?;
    // Only matters while the connection does, which keeps the process alive itself.
    callback.unref(env);
    let transport = ServiceTransport::create(queue, cm_id, &pd, shape, Some(waker))?;
    env.number(transport.id as f64)
}

unsafe extern "C" fn finalize_area(_env: napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: hint is the Box<Arc<AreaMemory>> leaked by external_area, finalized once.
    drop(unsafe { Box::from_raw(hint.cast::<Arc<AreaMemory>>()) });
}

/// An ArrayBuffer over `area` that keeps it alive until collected.
fn external_area(env: Env, area: &Arc<AreaMemory>) -> Result<napi_value> {
    let hint = Box::into_raw(Box::new(area.clone()));
    let mut out = std::ptr::null_mut();
    // SAFETY: the memory stays valid while `hint` holds an Arc to it; Node
    // calls finalize_area once when the ArrayBuffer is collected.
    let status = unsafe { napi_create_external_arraybuffer(env.0, area.pointer().cast(), area.length(), Some(finalize_area), hint.cast(), &mut out) };
    if status != NAPI_OK {
        // SAFETY: Node did not take the hint.
        drop(unsafe { Box::from_raw(hint) });
        return Err(VerbsError::new("ERR_VERBS_INTERNAL", format!("napi_create_external_arraybuffer failed ({status})")));
    }
    Ok(out)
}

/// `serviceTransportBuffers(transportId) -> { receive, send, chunk, slotBytes,
/// contextBytes, chunkBytes, readBuffers, credits, sendQueueDepth }`
fn service_transport_buffers(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let transport = transport_arg(env, arguments)?;
    let buffers = env.object()?;
    env.set(buffers, "receive", external_area(env, &transport.receive_memory)?)?;
    env.set(buffers, "send", external_area(env, &transport.send_memory)?)?;
    env.set(buffers, "chunk", external_area(env, &transport.chunks.memory)?)?;
    set_number(env, buffers, "slotBytes", transport.shape.slot_bytes as f64)?;
    set_number(env, buffers, "contextBytes", transport.shape.context_bytes as f64)?;
    set_number(env, buffers, "chunkBytes", transport.shape.chunk_bytes as f64)?;
    set_number(env, buffers, "readBuffers", READ_BUFFERS as f64)?;
    set_number(env, buffers, "credits", transport.shape.credits as f64)?;
    set_number(env, buffers, "sendQueueDepth", transport.shape.send_queue_depth as f64)?;
    Ok(buffers)
}

/// A segment list (see the top of this file), at most `max` segments.
fn segments_arg(env: Env, value: napi_value, name: &str, max: usize) -> Result<Vec<RemoteSegment>> {
    let (pointer, length) = env.to_bytes(value, name)?;
    let words = length / 4;
    if length % (SEGMENT_WORDS * 4) != 0 || words / SEGMENT_WORDS > max {
        return Err(VerbsError::invalid(format!("{name} must hold at most {max} segments of {SEGMENT_WORDS} words")));
    }
    // SAFETY: the typed array's bytes, alive for this call; read bytewise (no alignment assumed).
    let bytes = unsafe { std::slice::from_raw_parts(pointer.cast_const(), length) };
    let word = |index: usize| u32::from_ne_bytes(bytes[index * 4..index * 4 + 4].try_into().expect("4 bytes"));
    Ok((0..words / SEGMENT_WORDS)
        .map(|segment| {
            let base = segment * SEGMENT_WORDS;
            RemoteSegment { handle: word(base), length: word(base + 1), address: (word(base + 2) as u64) << 32 | word(base + 3) as u64 }
        })
        .collect())
}

fn read_outcome(env: Env, outcome: ReadOutcome) -> Result<napi_value> {
    env.number(match outcome {
        ReadOutcome::Done(buffer) => buffer as f64,
        ReadOutcome::Failed => READ_FAILED,
        ReadOutcome::Busy => READ_BUSY,
        ReadOutcome::InFlight => READ_IN_FLIGHT,
        ReadOutcome::Refused => READ_REFUSED,
    })
}

/// `serviceTransportReadChunks(transportId, worker, segments, waitMs) -> readBuffer
/// | -1 failed | -2 busy | -3 in flight | -4 refused` (blocks up to twice waitMs).
fn service_transport_read_chunks(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let transport = transport_arg(env, arguments)?;
    let worker = worker_arg(env, arguments.get(1))?;
    // A list longer than any call may carry is refused, not an argument error: it is the peer's.
    let segments = match segments_arg(env, arguments.get(2), "segments", WRITES_PER_REPLY_MAX) {
        Ok(segments) => segments,
        Err(_) => return env.number(READ_REFUSED),
    };
    read_outcome(env, transport.read_chunks(worker, &segments, wait_arg(env, arguments.get(3))?))
}

/// `serviceTransportReadWait(transportId, worker, waitMs)`: as ReadChunks, for Reads in flight.
fn service_transport_read_wait(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let transport = transport_arg(env, arguments)?;
    read_outcome(env, transport.wait_reads(worker_arg(env, arguments.get(1))?, wait_arg(env, arguments.get(2))?))
}

/// `serviceTransportGetSendContext(transportId, worker, waitMs, workRequests,
/// withWriteBuffer) -> (writeBuffer + 1) * 2^32 + context | -1` (may block).
fn service_transport_get_send_context(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let transport = transport_arg(env, arguments)?;
    let worker = worker_arg(env, arguments.get(1))?;
    let wait = wait_arg(env, arguments.get(2))?;
    let work_requests = env.to_integer(arguments.get(3), "workRequests", transport.shape.send_queue_depth as u64)? as u32;
    if work_requests == 0 {
        return Err(VerbsError::invalid("workRequests must be at least 1 (the Send)"));
    }
    let with_write_buffer = env.to_bool(arguments.get(4), "withWriteBuffer")?;
    let acquired = transport.get_send_context(worker, wait, work_requests, with_write_buffer);
    env.number(acquired.map_or(-1.0, |(context, buffer)| buffer.map_or(0.0, |buffer| (buffer as f64 + 1.0) * CONTEXT_FACTOR) + context as f64))
}

/// `serviceTransportFinishCall(transportId, worker, queueId, takeWaitMs,
/// stagedReplies[, context, replyLength, writes]) -> next transportId | 0`:
/// the end of the calls one take received and the start of the next in
/// one crossing. Posts the replies (`postReplies` below), then releases the
/// calls (xpo_release_ctxt + drain), then, if `takeWaitMs` > 0, takes the
/// next calls as `serviceQueueTake` does. The release happens whenever the
/// transport exists, even if the replies' arguments are refused (the error
/// is thrown after it).
fn service_transport_finish_call(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let queue = queue(id_arg(env, arguments.get(2), "queueId")?)?;
    let worker = worker_arg(env, arguments.get(1))?;
    let transport = match transport_arg(env, arguments) {
        Ok(transport) => transport,
        Err(error) => {
            // Torn down meanwhile: only the seat is left to clear.
            queue.vacate(worker);
            return Err(error);
        }
    };
    let posted = post_replies(env, arguments, 4, &queue, &transport, worker);
    transport.release(worker);
    posted?;
    let wait = wait_arg(env, arguments.get(3))?;
    take_call(env, &queue, worker, wait)
}

/// `serviceTransportPostReplies(transportId, worker, queueId, stagedReplies[,
/// context, replyLength, writes])`: posts replies of the calls the worker
/// took before it releases them — before a procedure that answers later
/// (the replies staged so far), or a reply with its own context.
fn service_transport_post_replies(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let queue = queue(id_arg(env, arguments.get(2), "queueId")?)?;
    let transport = transport_arg(env, arguments)?;
    post_replies(env, arguments, 3, &queue, &transport, worker_arg(env, arguments.get(1))?)?;
    env.undefined()
}

/// Posts, from argument `first` on: `stagedReplies` replies staged end to
/// end in the seat area (their lengths in its REPLY_LENGTHS words; one
/// chained post), then, with `context`, that send context's reply of
/// `replyLength` bytes after its Writes (a segment list, sources end to end
/// in its write buffer). A reply not posted is counted in the transport's `droppedReplies`.
fn post_replies(env: Env, arguments: &Arguments, first: usize, queue: &ServiceQueue, transport: &ServiceTransport, worker: usize) -> Result<()> {
    let staged = env.to_integer(arguments.get(first), "stagedReplies", CALLS_PER_TAKE_MAX as u64)? as usize;
    if staged > 0 {
        let seat = queue.seat_area(worker);
        let lengths: Vec<u32> = (0..staged).map(|index| seat.get(REPLY_LENGTHS + index)).collect();
        transport.post_staged_replies(seat.staged(STAGING_BYTES), &lengths, SEND_CONTEXT_WAIT)?;
    }
    if env.type_of(arguments.get(first + 1))? == NAPI_UNDEFINED {
        return Ok(());
    }
    let context = env.to_u32(arguments.get(first + 1), "context")?;
    if context >= transport.shape.contexts_max {
        return Err(VerbsError::invalid(format!("context {context} beyond contextsMax")));
    }
    let length = env.to_integer(arguments.get(first + 2), "replyLength", BUFFER_BYTES_MAX as u64)? as u32;
    let writes = segments_arg(env, arguments.get(first + 3), "writes", WRITES_PER_REPLY_MAX)?;
    transport.post_reply(worker, context, length, &writes).map(drop)
}

fn service_transport_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    transport_arg(env, arguments)?.close();
    env.undefined()
}

fn service_transport_idle(env: Env, arguments: &Arguments) -> Result<napi_value> {
    env.boolean(transport_arg(env, arguments)?.is_idle())
}

/// `serviceTransportDrainQueuePair(transportId, onDrained)`: see CmId::drain.
fn service_transport_drain_queue_pair(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let transport = transport_arg(env, arguments)?;
    let on_drained = arguments.get(1);
    if env.type_of(on_drained)? != NAPI_FUNCTION {
        return Err(VerbsError::arg_type("onDrained", "a function"));
    }
    let (waker, _callback) = javascript_waker(env, on_drained, "roce-verbs service transport drained")?;
    transport.drain_queue_pair(waker)?;
    env.undefined()
}

/// `serviceTransportFinish(transportId, reclaimPosted) -> metrics` (with `leakedContexts`).
fn service_transport_finish(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let transport = transport_arg(env, arguments)?;
    let leaked = transport.finish(env.to_bool(arguments.get(1), "reclaimPosted")?);
    let metrics = transport_metrics(env, &transport)?;
    set_number(env, metrics, "leakedContexts", leaked as f64)?;
    Ok(metrics)
}

fn service_transport_metrics(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let transport = transport_arg(env, arguments)?;
    transport_metrics(env, &transport)
}

const DRAIN_POINT_NAMES: [(DrainPoint, &str); 5] = [
    (DrainPoint::BetweenRpcs, "between-rpcs"),
    (DrainPoint::SelfEnqueue, "self-enqueue"),
    (DrainPoint::EmptyFreeList, "empty-free-list"),
    (DrainPoint::SqWait, "sq-wait"),
    (DrainPoint::Teardown, "teardown"),
];

fn transport_metrics(env: Env, transport: &ServiceTransport) -> Result<napi_value> {
    let counters = &transport.counters;
    let metrics = env.object()?;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed) as f64;
    set_number(env, metrics, "receives", load(&counters.receives))?;
    set_number(env, metrics, "emptyReceives", load(&counters.empty_receives))?;
    set_number(env, metrics, "selfEnqueues", load(&counters.self_enqueues))?;
    set_number(env, metrics, "sqWaits", load(&counters.sq_waits))?;
    set_number(env, metrics, "allocations", load(&counters.allocations))?;
    set_number(env, metrics, "exhausted", load(&counters.exhausted))?;
    set_number(env, metrics, "failedSends", load(&counters.failed_sends))?;
    set_number(env, metrics, "lostSends", load(&counters.lost_sends))?;
    set_number(env, metrics, "droppedReplies", load(&counters.dropped_replies))?;
    set_number(env, metrics, "readCalls", load(&counters.read_calls))?;
    set_number(env, metrics, "readBytes", load(&counters.read_bytes))?;
    set_number(env, metrics, "readFailures", load(&counters.read_failures))?;
    set_number(env, metrics, "writeReplies", load(&counters.write_replies))?;
    set_number(env, metrics, "writtenBytes", load(&counters.written_bytes))?;
    set_number(env, metrics, "chunkBuffersInUse", transport.chunks.in_use() as f64)?;
    set_number(env, metrics, "inUse", transport.contexts_in_use() as f64)?;
    set_number(env, metrics, "postedReceives", transport.posted_receives() as f64)?;
    set_number(env, metrics, "openRegistrations", transport.open_registrations() as f64)?;
    // State now, for diagnosing a transport that waits: BUSY 1, DATA 2, CLOSE 4 (service_queue.rs).
    set_number(env, metrics, "flags", transport.flags.get() as f64)?;
    set_number(env, metrics, "queuedReceives", transport.queued_receives() as f64)?;
    set_number(env, metrics, "releasePending", transport.release_pending() as f64)?;
    let drains = env.object()?;
    let released = env.object()?;
    for (point, name) in DRAIN_POINT_NAMES {
        set_number(env, drains, name, load(&counters.drains[point as usize]))?;
        set_number(env, released, name, load(&counters.released[point as usize]))?;
    }
    env.set(metrics, "drains", drains)?;
    env.set(metrics, "released", released)?;
    let batches = env.array(BATCH_BUCKETS.len())?;
    for (index, counter) in counters.batch_sizes.iter().enumerate() {
        env.set_element(batches, index as u32, env.number(load(counter))?)?;
    }
    env.set(metrics, "batchSizes", batches)?;
    Ok(metrics)
}
