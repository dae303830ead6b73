//! `releaseListCreate`, `releaseListPush`, `releaseListDrain`,
//! `releaseListClose`. A list handle can also be given to `cqCreate`, whose
//! completion thread then appends successful Send completions' work
//! request ids to it instead of waking JavaScript.

use crate::error::{Result, VerbsError};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::napi_value;
use crate::napi::value::MAX_SAFE_INTEGER;
use crate::napi::Env;
use crate::release_list::{ReleaseList, RELEASE_LIST_CAPACITY_MAX};
use std::sync::Arc;

pub(super) const KIND: &str = "ReleaseList";

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "releaseListCreate", release_list_create)?;
    export(env, exports, "releaseListPush", release_list_push)?;
    export(env, exports, "releaseListDrain", release_list_drain)?;
    export(env, exports, "releaseListLength", release_list_length)?;
    export(env, exports, "releaseListClose", release_list_close)
}

/// The list inside a ReleaseList handle argument.
pub(super) fn list_arg<'a>(env: Env, value: napi_value) -> Result<&'a Handle<Arc<ReleaseList>>> {
    unwrap::<Arc<ReleaseList>>(env, value, "releaseList", KIND)
}

fn release_list_create(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let capacity = env.to_u32(arguments.get(0), "capacity")? as usize;
    if !capacity.is_power_of_two() || !(2..=RELEASE_LIST_CAPACITY_MAX).contains(&capacity) {
        return Err(VerbsError::invalid(format!("capacity must be a power of two in [2, {RELEASE_LIST_CAPACITY_MAX}], got {capacity}")));
    }
    wrap(env, KIND, Arc::new(ReleaseList::new(capacity)))
}

/// `releaseListPush(list, value) -> boolean` (false: the list is full).
fn release_list_push(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let value = env.to_integer(arguments.get(1), "value", MAX_SAFE_INTEGER as u64)?;
    let pushed = list_arg(env, arguments.get(0))?.with(|list| Ok(list.push(value).is_ok()))?;
    env.boolean(pushed)
}

/// `releaseListDrain(list, out: Float64Array) -> count`
fn release_list_drain(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let (data, bytes) = env.to_bytes(arguments.get(1), "out")?;
    if (data as usize) % 8 != 0 {
        return Err(VerbsError::invalid("out must be a Float64Array"));
    }
    // SAFETY: data points to `bytes` live, 8-aligned bytes of the caller's
    // Float64Array, which outlives this call.
    let out = unsafe { std::slice::from_raw_parts_mut(data.cast::<f64>(), bytes / 8) };
    let count = list_arg(env, arguments.get(0))?.with(|list| {
        let mut index = 0;
        Ok(list.drain(out.len(), |value| {
            out[index] = value as f64;
            index += 1;
        }))
    })?;
    env.number(count as f64)
}

fn release_list_length(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let length = list_arg(env, arguments.get(0))?.with(|list| Ok(list.len()))?;
    env.number(length as f64)
}

fn release_list_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    drop(list_arg(env, arguments.get(0))?.take());
    env.undefined()
}
