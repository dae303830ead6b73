//! `qpPostSend`, `qpPostRecv`, `qpClose`: the data path;
//! `qpPostSendAndDrain`: a reply's Send and its transport's release in one call.
//!
//! Arguments are flat so that a post costs one `napi_get_cb_info` plus a
//! few reads, no objects:
//! `qpPostSend(qp, wrId, opcode, flags, remoteAddress, rkey, immediate, mr, offset, length, ...)`
//! `qpPostRecv(qp, wrId, mr, offset, length, ...)`.
//! Every SGE is checked against its memory region (EINVAL if any byte lies
//! outside) and the region's PD against the QP's.

use super::completion_watch::watch_arg;
use super::memory_region::{mr_arg, RegionBinding};
use super::release_list::drain_into;
use super::set_number;
use crate::cm_id::{CmId, SendRequest, SGE_PER_WORK_REQUEST_MAX};
use crate::error::{Result, VerbsError};
use crate::memory_region::MemoryRegion;
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::{napi_value, NAPI_FUNCTION};
use crate::napi::threadsafe::javascript_waker;
use crate::send_queue_account::SEND_QUEUE_WAITERS_MAX;
use crate::napi::value::MAX_SAFE_INTEGER;
use crate::napi::Env;
use crate::sys;
use std::cell::Ref;
use std::sync::Arc;

pub(super) const KIND: &str = "QueuePair";

/// A QP handle shares its id with the CmId handle.
pub(super) struct QueuePairBinding(Arc<CmId>);

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "qpPostSend", qp_post_send)?;
    export(env, exports, "qpPostRecv", qp_post_recv)?;
    export(env, exports, "qpPostSendAndDrain", qp_post_send_and_drain)?;
    export(env, exports, "qpDrain", qp_drain)?;
    export(env, exports, "qpSendQueueState", qp_send_queue_state)?;
    export(env, exports, "qpWaitSendQueue", qp_wait_send_queue)?;
    export(env, exports, "qpClose", qp_close)
}

/// The id inside a QueuePair handle argument.
pub(super) fn qp_id_arg(env: Env, value: napi_value) -> Result<Arc<CmId>> {
    Ok(unwrap::<QueuePairBinding>(env, value, "queuePair", KIND)?.get()?.0.clone())
}

/// Wraps the QP of `id`, with its number and granted capabilities.
pub(super) fn wrap_queue_pair(env: Env, id: Arc<CmId>, capabilities: &sys::roce_qp_capabilities) -> Result<napi_value> {
    let number = id.queue_pair_number()?;
    let handle = wrap(env, KIND, QueuePairBinding(id))?;
    set_number(env, handle, "qpNumber", number as f64)?;
    set_number(env, handle, "maxSendWr", capabilities.max_send_wr as f64)?;
    set_number(env, handle, "maxRecvWr", capabilities.max_recv_wr as f64)?;
    set_number(env, handle, "maxSendSge", capabilities.max_send_sge as f64)?;
    set_number(env, handle, "maxRecvSge", capabilities.max_recv_sge as f64)?;
    set_number(env, handle, "maxInlineData", capabilities.max_inline_data as f64)?;
    Ok(handle)
}

fn qp_arg<'a>(env: Env, arguments: &Arguments) -> Result<&'a Handle<QueuePairBinding>> {
    unwrap::<QueuePairBinding>(env, arguments.get(0), "queuePair", KIND)
}

/// The SGEs given as (mr, offset, length) triples from argument `first`,
/// held in fixed arrays: a post allocates nothing.
struct ScatterGather<'a> {
    sges: [sys::ibv_sge; SGE_PER_WORK_REQUEST_MAX],
    regions: [Option<Ref<'a, Arc<RegionBinding>>>; SGE_PER_WORK_REQUEST_MAX],
    count: usize,
}

fn scatter_gather<'a>(env: Env, arguments: &Arguments, first: usize) -> Result<ScatterGather<'a>> {
    let extra = arguments.count().saturating_sub(first);
    if extra % 3 != 0 {
        return Err(VerbsError::invalid("SGEs are given as (memoryRegion, offset, length) triples"));
    }
    sges_at(env, arguments, first, extra / 3)
}

/// `count` SGE triples from argument `first` on.
fn sges_at<'a>(env: Env, arguments: &Arguments, first: usize, count: usize) -> Result<ScatterGather<'a>> {
    if count > SGE_PER_WORK_REQUEST_MAX {
        return Err(VerbsError::invalid(format!("at most {SGE_PER_WORK_REQUEST_MAX} SGEs per work request")));
    }
    let mut list = ScatterGather { sges: [sys::ibv_sge::default(); SGE_PER_WORK_REQUEST_MAX], regions: Default::default(), count };
    for index in 0..count {
        let at = first + 3 * index;
        let handle: &'a Handle<Arc<RegionBinding>> = mr_arg(env, arguments.get(at), "sge.memoryRegion")?;
        let binding = handle.get()?;
        let offset = env.to_integer(arguments.get(at + 1), "sge.offset", u64::MAX)?;
        let length = env.to_integer(arguments.get(at + 2), "sge.length", u32::MAX as u64)?;
        list.sges[index] = binding.region.sge(offset, length)?;
        list.regions[index] = Some(binding);
    }
    Ok(list)
}

fn region_refs<'b>(list: &'b ScatterGather<'_>) -> [Option<&'b MemoryRegion>; SGE_PER_WORK_REQUEST_MAX] {
    let mut regions = [None; SGE_PER_WORK_REQUEST_MAX];
    for (slot, binding) in regions.iter_mut().zip(list.regions.iter()) {
        *slot = binding.as_ref().map(|binding| &binding.region);
    }
    regions
}

fn qp_post_send(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let qp = qp_arg(env, arguments)?;
    let list = scatter_gather(env, arguments, 7)?;
    let opcode = env.to_u32(arguments.get(2), "opcode")?;
    if opcode > sys::IBV_WR_RDMA_READ {
        return Err(VerbsError::invalid(format!("unsupported opcode {opcode}")));
    }
    let flags = env.to_u32(arguments.get(3), "flags")?;
    let allowed = sys::IBV_SEND_FENCE | sys::IBV_SEND_SIGNALED | sys::IBV_SEND_SOLICITED | sys::IBV_SEND_INLINE;
    if flags & !allowed != 0 {
        return Err(VerbsError::invalid(format!("unsupported send flags {flags:#x}")));
    }
    let request = SendRequest {
        wr_id: env.to_integer(arguments.get(1), "wrId", MAX_SAFE_INTEGER as u64)?,
        opcode,
        flags,
        sges: &list.sges[..list.count],
        remote_address: env.to_integer(arguments.get(4), "remoteAddress", u64::MAX)?,
        rkey: env.to_u32(arguments.get(5), "rkey")?,
        immediate: env.to_u32(arguments.get(6), "immediate")?,
    };
    let regions = region_refs(&list);
    qp.with(|binding| binding.0.post_send(&request, &regions[..list.count]))?;
    env.undefined()
}

fn qp_post_recv(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let qp = qp_arg(env, arguments)?;
    let list = scatter_gather(env, arguments, 2)?;
    let wr_id = env.to_integer(arguments.get(1), "wrId", MAX_SAFE_INTEGER as u64)?;
    let regions = region_refs(&list);
    qp.with(|binding| binding.0.post_recv(wr_id, &list.sges[..list.count], &regions[..list.count]))?;
    env.undefined()
}

/// `qpPostSendAndDrain(qp, wrId, mr, offset, length, sendCq, releaseList,
/// out: Float64Array) -> count`: posts a signaled Send of one SGE, routes
/// the watched Send CQ (`cqWatch`: Sends onto `releaseList`, anything else to
/// its onEvent before this returns), then drains `releaseList` into `out`
/// and returns how many ids it holds — what a server transport does after
/// each reply (post, then release between RPCs), in one call instead of
/// three. The routing's transition is not reported: the drain follows.
fn qp_post_send_and_drain(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let qp = qp_arg(env, arguments)?;
    let send_completions = watch_arg(env, arguments.get(5), "sendCompletionQueue")?;
    {
        // The region borrows end before onEvent may run (it may close handles).
        let list = sges_at(env, arguments, 2, 1)?;
        let request = SendRequest {
            wr_id: env.to_integer(arguments.get(1), "wrId", MAX_SAFE_INTEGER as u64)?,
            opcode: sys::IBV_WR_SEND,
            flags: sys::IBV_SEND_SIGNALED,
            sges: &list.sges[..1],
            remote_address: 0,
            rkey: 0,
            immediate: 0,
        };
        let regions = region_refs(&list);
        qp.with(|binding| binding.0.post_send(&request, &regions[..1]))?;
    }
    send_completions.route_nested(false)?;
    let count = drain_into(env, arguments.get(6), arguments.get(7))?;
    env.number(count as f64)
}

/// `qpDrain(qp, onDrained)`: see `CmId::drain`. onDrained is called once,
/// on this thread, when both markers were polled.
fn qp_drain(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let on_drained = arguments.get(1);
    if env.type_of(on_drained)? != NAPI_FUNCTION {
        return Err(VerbsError::arg_type("onDrained", "a function"));
    }
    let (waker, _callback) = javascript_waker(env, on_drained, "roce-verbs queue pair drained")?;
    qp_arg(env, arguments)?.with(|binding| binding.0.drain(waker))?;
    env.undefined()
}

/// `qpSendQueueState(qp) -> { available, failed }`
fn qp_send_queue_state(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let account = qp_arg(env, arguments)?.with(|binding| binding.0.send_queue_account())?;
    let state = env.object()?;
    set_number(env, state, "available", account.available() as f64)?;
    env.set(state, "failed", env.boolean(account.is_failed())?)?;
    Ok(state)
}

/// `qpWaitSendQueue(qp, entries, onSpace) -> registered`: false when there
/// already is room (or the account failed): onSpace will not be called.
fn qp_wait_send_queue(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let account = qp_arg(env, arguments)?.with(|binding| binding.0.send_queue_account())?;
    let entries = env.to_u32(arguments.get(1), "entries")?;
    let on_space = arguments.get(2);
    if env.type_of(on_space)? != NAPI_FUNCTION {
        return Err(VerbsError::arg_type("onSpace", "a function"));
    }
    let (waker, _callback) = javascript_waker(env, on_space, "roce-verbs send queue space")?;
    let registered = account
        .wait(entries, waker)
        .map_err(|_| VerbsError::from_errno(libc::EBUSY, format!("more than {SEND_QUEUE_WAITERS_MAX} waiters for Send Queue space")))?;
    env.boolean(registered)
}

fn qp_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    if let Some(binding) = qp_arg(env, arguments)?.take() {
        binding.0.destroy_queue_pair();
    }
    env.undefined()
}
