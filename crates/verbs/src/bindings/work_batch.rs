//! `batchCreate`, `batchSubmit`, `batchClose`: many work requests and a
//! completion poll in one call into the addon.
//!
//! Why: in an emulated guest one call into the addon costs ≈ 14 µs (0.4 µs
//! on the host), which dominates a ping-pong that needs three per side
//! (post Receive, post Send, poll). A batch is bound at creation to a QP,
//! a table of memory regions and optionally a polled CQ; JavaScript encodes
//! work requests into a Float64Array (no call per request) and `batchSubmit`
//! posts them in order, then polls, writing completion records into the
//! same array after the descriptors.
//!
//! Layout of the array (f64 slots):
//! ```text
//! [0, capacity*8)        descriptors, 8 slots each:
//!                        kind, wrId, region index, offset, length, flags, remote address, rkey
//!                        kind: IBV_WR_RDMA_WRITE 0, IBV_WR_SEND 2, IBV_WR_RDMA_READ 4, RECEIVE 255
//! [capacity*8, +cqMax*5) completion records (COMPLETION_WORDS u32 = 5 f64 each)
//! ```
//! Life: owned by its handle (the JavaScript thread that made it); holds its
//! QP's id, its regions and its CQ alive (their `close()` says EBUSY).

use super::completion_queue::cq_arg;
use super::memory_region::{mr_arg, RegionBinding};
use super::queue_pair::qp_id_arg;
use crate::cm_id::{CmId, SendRequest};
use crate::completion_queue::CompletionQueue;
use crate::error::{Result, VerbsError};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap};
use crate::napi::sys::napi_value;
use crate::napi::value::MAX_SAFE_INTEGER;
use crate::napi::Env;
use crate::sys::{self, roce_completion, COMPLETION_WORDS};
use std::sync::Arc;
use std::time::Duration;

pub(super) const KIND: &str = "WorkBatch";
/// Most work requests per submit: a send queue rarely has more room.
pub const BATCH_CAPACITY_MAX: usize = 256;
/// Most completions one submit returns.
pub const BATCH_COMPLETIONS_MAX: usize = 256;
/// Most regions a batch addresses by index.
pub const BATCH_REGIONS_MAX: usize = 16;
const SLOTS_PER_DESCRIPTOR: usize = 8;
const SLOTS_PER_COMPLETION: usize = COMPLETION_WORDS / 2;
const KIND_RECEIVE: u32 = 255;

struct WorkBatch {
    id: Arc<CmId>,
    regions: Vec<Arc<RegionBinding>>,
    completion_queue: Option<Arc<CompletionQueue>>,
    capacity: usize,
    completions_max: usize,
}

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "batchCreate", batch_create)?;
    export(env, exports, "batchSubmit", batch_submit)?;
    export(env, exports, "batchClose", batch_close)
}

/// `batchCreate(qp, regions[], cq|null, capacity, completionsMax)`; regions
/// are passed as arguments 5.. (the region handles).
fn batch_create(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let id = qp_id_arg(env, arguments.get(0))?;
    id.queue_pair_number()?;
    let completion_queue = match env.is_nullish(arguments.get(1))? {
        true => None,
        false => Some(cq_arg(env, arguments.get(1), "completionQueue")?.get()?.cq.clone()),
    };
    if completion_queue.as_ref().is_some_and(|cq| cq.is_threaded()) {
        return Err(VerbsError::new("ERR_VERBS_CQ_THREADED", "a work batch polls its CQ: give it a polled one"));
    }
    let capacity = env.to_integer(arguments.get(2), "capacity", BATCH_CAPACITY_MAX as u64)? as usize;
    let completions_max = env.to_integer(arguments.get(3), "completionsMax", BATCH_COMPLETIONS_MAX as u64)? as usize;
    let region_count = arguments.count().saturating_sub(4);
    if capacity == 0 || region_count == 0 || region_count > BATCH_REGIONS_MAX {
        return Err(VerbsError::invalid(format!("a batch needs capacity >= 1 and 1..{BATCH_REGIONS_MAX} regions")));
    }
    let mut regions = Vec::with_capacity(region_count);
    for index in 0..region_count {
        regions.push(mr_arg(env, arguments.get(4 + index), "regions[]")?.get()?.clone());
    }
    wrap(env, KIND, WorkBatch { id, regions, completion_queue, capacity, completions_max })
}

impl WorkBatch {
    fn sge(&self, slots: &[f64]) -> Result<(sys::ibv_sge, &RegionBinding)> {
        let index = slots[2];
        let region = (index >= 0.0 && index.fract() == 0.0).then(|| self.regions.get(index as usize)).flatten();
        let region = region.ok_or_else(|| VerbsError::invalid(format!("region index {index} is not in the batch")))?;
        let offset = integer(slots[3], "offset", u64::MAX)?;
        let length = integer(slots[4], "length", u32::MAX as u64)?;
        Ok((region.region.sge(offset, length)?, region))
    }

    fn post(&self, slots: &[f64]) -> Result<()> {
        let kind = integer(slots[0], "kind", 255)? as u32;
        let wr_id = integer(slots[1], "wrId", MAX_SAFE_INTEGER as u64)?;
        let (sge, region) = self.sge(slots)?;
        let regions = [Some(&region.region)];
        if kind == KIND_RECEIVE {
            return self.id.post_recv(wr_id, &[sge], &regions);
        }
        if kind != sys::IBV_WR_SEND && kind != sys::IBV_WR_RDMA_WRITE && kind != sys::IBV_WR_RDMA_READ {
            return Err(VerbsError::invalid(format!("work request kind {kind} is not allowed in a batch")));
        }
        let flags = integer(slots[5], "flags", 0xf)? as u32;
        let request = SendRequest {
            wr_id,
            opcode: kind,
            flags,
            sges: &[sge],
            remote_address: integer(slots[6], "remoteAddress", MAX_SAFE_INTEGER as u64)?,
            rkey: integer(slots[7], "rkey", u32::MAX as u64)? as u32,
            immediate: 0,
        };
        self.id.post_send(&request, &regions)
    }
}

fn integer(value: f64, name: &str, max: u64) -> Result<u64> {
    if value >= 0.0 && value.fract() == 0.0 && value <= max as f64 {
        Ok(value as u64)
    } else {
        Err(VerbsError::invalid(format!("descriptor {name} must be an integer in [0, {max}], got {value}")))
    }
}

/// `batchSubmit(batch, slots: Float64Array, count, spinMicros) -> completions`
/// (spinMicros < 0: do not poll).
fn batch_submit(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let handle = unwrap::<WorkBatch>(env, arguments.get(0), "workBatch", KIND)?;
    let batch = handle.get()?;
    let (data, bytes) = env.to_bytes(arguments.get(1), "slots")?;
    let slot_count = batch.capacity * SLOTS_PER_DESCRIPTOR + batch.completions_max * SLOTS_PER_COMPLETION;
    if bytes < slot_count * 8 || (data as usize) % 8 != 0 {
        return Err(VerbsError::invalid("slots must be the batch's Float64Array"));
    }
    // SAFETY: data points to at least slot_count live, 8-aligned f64 of the
    // caller's Float64Array, which outlives this call.
    let slots = unsafe { std::slice::from_raw_parts_mut(data.cast::<f64>(), slot_count) };
    let count = env.to_integer(arguments.get(2), "count", batch.capacity as u64)? as usize;
    for (index, descriptor) in slots.chunks_exact(SLOTS_PER_DESCRIPTOR).take(count).enumerate() {
        batch.post(descriptor).map_err(|error| VerbsError { message: format!("work request {index} of the batch (earlier ones are posted): {}", error.message), ..error })?;
    }
    let spin = env.to_integer(arguments.get(3), "spinMicros", u32::MAX as u64).ok();
    let polled = match (&batch.completion_queue, spin) {
        (Some(cq), Some(spin)) if batch.completions_max > 0 => {
            let area = &mut slots[batch.capacity * SLOTS_PER_DESCRIPTOR..];
            // SAFETY: the completion area holds completions_max records of
            // 40 bytes (5 f64), 8-aligned, inside the caller's array.
            let records = unsafe { std::slice::from_raw_parts_mut(area.as_mut_ptr().cast::<roce_completion>(), batch.completions_max) };
            cq.poll(records, Duration::from_micros(spin))?
        }
        _ => 0,
    };
    env.number(polled as f64)
}

fn batch_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    drop(unwrap::<WorkBatch>(env, arguments.get(0), "workBatch", KIND)?.take());
    env.undefined()
}
