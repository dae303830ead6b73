//! `releaseListCreate`, `releaseListPush`, `releaseListDrain`,
//! `releaseListLength`, `releaseListClosing`, `releaseListClose`. A list
//! handle can also be given to `cqCreate`, whose completion thread then
//! appends every Send completion's work request id to it (failures marked)
//! instead of waking JavaScript; the list's `onPending` is called once per
//! empty -> non-empty transition.

use crate::error::{Result, VerbsError};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::{napi_value, NAPI_FUNCTION};
use crate::napi::threadsafe::javascript_waker;
use crate::napi::Env;
use crate::release_list::{ReleaseList, FAILED_BIT, RELEASE_LIST_CAPACITY_MAX};
use std::sync::Arc;

pub(super) const KIND: &str = "ReleaseList";

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "releaseListCreate", release_list_create)?;
    export(env, exports, "releaseListPush", release_list_push)?;
    export(env, exports, "releaseListDrain", release_list_drain)?;
    export(env, exports, "releaseListLength", release_list_length)?;
    export(env, exports, "releaseListClosing", release_list_closing)?;
    export(env, exports, "releaseListClose", release_list_close)
}

/// The list inside a ReleaseList handle argument.
pub(super) fn list_arg<'a>(env: Env, value: napi_value) -> Result<&'a Handle<Arc<ReleaseList>>> {
    unwrap::<Arc<ReleaseList>>(env, value, "releaseList", KIND)
}

/// `releaseListCreate(capacity, onPending?)`. The wake does not keep the
/// process alive: it only matters while the list's transport (its CQs and
/// connection) does.
fn release_list_create(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let capacity = env.to_u32(arguments.get(0), "capacity")? as usize;
    if !(2..=RELEASE_LIST_CAPACITY_MAX).contains(&capacity) {
        return Err(VerbsError::invalid(format!("capacity must be in [2, {RELEASE_LIST_CAPACITY_MAX}], got {capacity}")));
    }
    let on_pending = arguments.get(1);
    let waker = if env.is_nullish(on_pending)? {
        None
    } else {
        if env.type_of(on_pending)? != NAPI_FUNCTION {
            return Err(VerbsError::arg_type("onPending", "a function"));
        }
        let (waker, callback) = javascript_waker(env, on_pending, "roce-verbs release list pending")?;
        callback.unref(env);
        Some(waker)
    };
    wrap(env, KIND, Arc::new(ReleaseList::new(capacity, waker)))
}

/// `releaseListPush(list, wrId, failed) -> boolean`: true on the empty ->
/// non-empty transition (the list's onPending has been queued).
fn release_list_push(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let wr_id = env.to_integer(arguments.get(1), "wrId", FAILED_BIT - 1)?;
    let failed = env.to_bool(arguments.get(2), "failed")?;
    let transition = list_arg(env, arguments.get(0))?.with(|list| Ok(if failed { list.push_failed(wr_id) } else { list.push(wr_id) }))?;
    env.boolean(transition)
}

/// `releaseListDrain(list, out: Float64Array) -> count`
fn release_list_drain(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let count = drain_into(env, arguments.get(0), arguments.get(1))?;
    env.number(count as f64)
}

/// Drains the list handle `list` into the Float64Array `out`; returns how many.
pub(super) fn drain_into(env: Env, list: napi_value, out: napi_value) -> Result<usize> {
    let (data, bytes) = env.to_bytes(out, "out")?;
    if (data as usize) % 8 != 0 {
        return Err(VerbsError::invalid("out must be a Float64Array"));
    }
    // SAFETY: data points to `bytes` live, 8-aligned bytes of the caller's
    // Float64Array, which outlives this call.
    let out = unsafe { std::slice::from_raw_parts_mut(data.cast::<f64>(), bytes / 8) };
    list_arg(env, list)?.with(|list| {
        let mut index = 0;
        Ok(list.drain(out.len(), |value| {
            out[index] = value as f64;
            index += 1;
        }))
    })
}

fn release_list_length(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let length = list_arg(env, arguments.get(0))?.with(|list| Ok(list.len()))?;
    env.number(length as f64)
}

fn release_list_closing(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let closing = list_arg(env, arguments.get(0))?.with(|list| Ok(list.is_closing()))?;
    env.boolean(closing)
}

fn release_list_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    drop(list_arg(env, arguments.get(0))?.take());
    env.undefined()
}
