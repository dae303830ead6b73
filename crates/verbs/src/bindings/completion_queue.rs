//! `cqCreate`, `cqPoll`, `cqClose`, `cqUnref`.
//!
//! A CQ created with `onCompletions` is threaded: its completion thread
//! hands batches to JavaScript through a threadsafe function, each batch one
//! ArrayBuffer of 40-byte records (see COMPLETION_WORDS) that the
//! TypeScript side decodes. With `onPending` it is notified: the thread
//! queues completions in a ring and calls `onPending` once per empty ->
//! non-empty transition; `cqPoll` takes them. Without either the CQ is
//! polled: `cqPoll` writes the same records into a caller-owned
//! Uint32Array, allocating nothing, optionally spinning (for a dedicated
//! worker thread).

use super::completion_watch::{self, LoopWatch};
use super::device::device_arg;
use super::release_list::list_arg;
use crate::completion_queue::CompletionQueue;
use crate::completion_ring::{CompletionRing, RingSink};
use crate::completion_thread::{CompletionSink, SinkOutcome, ThreadOptions, BATCH_MAX, RELEASE_WR_ID_LIMIT_DEFAULT};
use crate::release_list::FAILED_BIT;
use crate::error::{Result, VerbsError};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::*;
use crate::napi::threadsafe::{javascript_waker, CallError, KeepAlive, ThreadsafeCallback};
use crate::napi::Env;
use crate::sys::{roce_completion, COMPLETION_WORDS};
use std::sync::Arc;
use std::time::Duration;

pub(super) const KIND: &str = "CompletionQueue";
/// Batches waiting for JavaScript per CQ: with BATCH_MAX completions each,
/// more than any CQ depth we allow; beyond it the thread backs off.
const BATCHES_QUEUED_MAX: usize = 256;

/// A threaded CQ's handle also owns the threadsafe function's lifetime
/// switch, so `cqUnref` can let the process exit; a watched one (`cqWatch`)
/// owns its event-loop watch.
pub(super) struct CqBinding {
    /// First, so it is dropped first: the watch stops before the CQ's channel goes.
    pub(super) watch: Option<LoopWatch>,
    pub(super) cq: Arc<CompletionQueue>,
    callback: Option<Arc<dyn KeepAlive>>,
}

impl CqBinding {
    /// The handle of a CQ routed on this thread's event loop.
    pub(super) fn watched(cq: Arc<CompletionQueue>, watch: LoopWatch) -> CqBinding {
        CqBinding { watch: Some(watch), cq, callback: None }
    }
}

struct JavaScriptSink(Arc<ThreadsafeCallback<Vec<roce_completion>>>);

impl CompletionSink for JavaScriptSink {
    fn deliver(&self, batch: Vec<roce_completion>) -> SinkOutcome {
        match self.0.call(batch) {
            Ok(()) => SinkOutcome::Accepted,
            Err(CallError::Full(batch)) => SinkOutcome::Full(batch),
            Err(CallError::Closing(_)) => SinkOutcome::Closed,
        }
    }
}

fn records_as_bytes(records: &[roce_completion]) -> &[u8] {
    // SAFETY: roce_completion is a repr(C) struct of u32 with no padding.
    unsafe { std::slice::from_raw_parts(records.as_ptr().cast(), std::mem::size_of_val(records)) }
}

fn deliver_batch(env: Env, callback: napi_value, batch: Vec<roce_completion>) -> Result<()> {
    let records = env.array_buffer_copy(records_as_bytes(&batch))?;
    env.call(callback, &[records])?;
    Ok(())
}

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "cqCreate", cq_create)?;
    export(env, exports, "cqPoll", cq_poll)?;
    export(env, exports, "cqUnref", cq_unref)?;
    export(env, exports, "cqClose", cq_close)?;
    completion_watch::register(env, exports)
}

/// The CQ inside a CompletionQueue handle argument.
pub(super) fn cq_arg<'a>(env: Env, value: napi_value, name: &str) -> Result<&'a Handle<CqBinding>> {
    unwrap::<CqBinding>(env, value, name, KIND)
}

/// `cqCreate(device, depth, onCompletions?, busyPollMicros, batchMax,
/// releaseList?, releaseWrIdLimit?, onPending?)`
fn cq_create(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let device = device_arg(env, arguments.get(0))?.get()?.clone();
    let depth = env.to_u32(arguments.get(1), "depth")?;
    let on_completions = function_arg(env, arguments.get(2), "onCompletions")?;
    let on_pending = function_arg(env, arguments.get(7), "onPending")?;
    if on_completions.is_some() && on_pending.is_some() {
        return Err(VerbsError::invalid("give a completion queue onCompletions or onPending, not both"));
    }
    let threaded = on_completions.is_some() || on_pending.is_some();
    let cq = Arc::new(CompletionQueue::create(&device, depth, threaded)?);
    let mut binding = CqBinding { watch: None, cq: cq.clone(), callback: None };
    if threaded {
        let options = thread_options(env, arguments)?;
        if let Some(on_pending) = on_pending {
            let (waker, tsfn) = javascript_waker(env, on_pending, "roce-verbs completions pending")?;
            let ring = Arc::new(CompletionRing::new((depth as usize).next_power_of_two().max(2), waker));
            cq.attach_ring(ring.clone());
            cq.start_thread(options, Box::new(RingSink(ring)))?;
            binding.callback = Some(tsfn);
        } else if let Some(on_completions) = on_completions {
            let tsfn = Arc::new(ThreadsafeCallback::new(env, on_completions, "roce-verbs completions", BATCHES_QUEUED_MAX, deliver_batch)?);
            cq.start_thread(options, Box::new(JavaScriptSink(tsfn.clone())))?;
            binding.callback = Some(tsfn);
        }
    }
    wrap(env, KIND, binding)
}

/// A function argument, or None when null/undefined.
fn function_arg(env: Env, value: napi_value, name: &str) -> Result<Option<napi_value>> {
    if env.is_nullish(value)? {
        return Ok(None);
    }
    if env.type_of(value)? != NAPI_FUNCTION {
        return Err(VerbsError::arg_type(name, "a function"));
    }
    Ok(Some(value))
}

/// The completion thread's options from arguments 3..=6 of `cqCreate`.
fn thread_options(env: Env, arguments: &Arguments) -> Result<ThreadOptions> {
    let release_wr_id_limit = match env.is_nullish(arguments.get(6))? {
        true => RELEASE_WR_ID_LIMIT_DEFAULT,
        false => env.to_integer(arguments.get(6), "releaseWrIdLimit", FAILED_BIT)?,
    };
    Ok(ThreadOptions {
        busy_poll: Duration::from_micros(env.to_integer(arguments.get(3), "busyPollMicros", u32::MAX as u64)?),
        batch_max: env.to_integer(arguments.get(4), "batchMax", BATCH_MAX as u64)? as usize,
        release_list: match env.is_nullish(arguments.get(5))? {
            true => None,
            false => Some(list_arg(env, arguments.get(5))?.get()?.clone()),
        },
        release_wr_id_limit,
        markers: Default::default(),
        account: Default::default(),
        poll_lock: None,
    })
}

/// `cqPoll(cq, out: Uint32Array, max, spinMicros) -> count`
fn cq_poll(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let handle = cq_arg(env, arguments.get(0), "completionQueue")?;
    let (data, bytes) = env.to_bytes(arguments.get(1), "out")?;
    let max = env.to_u32(arguments.get(2), "max")? as usize;
    let spin = Duration::from_micros(env.to_integer(arguments.get(3), "spinMicros", u32::MAX as u64)?);
    let record_bytes = COMPLETION_WORDS * 4;
    if max == 0 || max * record_bytes > bytes || (data as usize) % 4 != 0 {
        return Err(VerbsError::invalid(format!("out must be an aligned Uint32Array of at least max*{COMPLETION_WORDS} words")));
    }
    // SAFETY: data points to `bytes` bytes of live, 4-aligned memory owned
    // by the typed array the caller passed, which outlives this call.
    let out = unsafe { std::slice::from_raw_parts_mut(data.cast::<roce_completion>(), max) };
    let count = handle.with(|binding| binding.cq.poll(out, spin))?;
    env.number(count as f64)
}

fn cq_unref(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let handle = cq_arg(env, arguments.get(0), "completionQueue")?;
    let reference = env.to_bool(arguments.get(1), "keepAlive")?;
    handle.with(|binding| {
        if let Some(callback) = &binding.callback {
            if reference {
                callback.reference(env)
            } else {
                callback.unref(env)
            }
        }
        Ok(())
    })?;
    env.undefined()
}

fn cq_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let handle = cq_arg(env, arguments.get(0), "completionQueue")?;
    if let Some(binding) = handle.take() {
        if Arc::strong_count(&binding.cq) > 1 {
            handle.restore(binding);
            return Err(VerbsError::from_errno(libc::EBUSY, "close the queue pairs using this completion queue first"));
        }
    }
    env.undefined()
}
