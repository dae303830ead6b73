//! `mrRegister`, `mrClose`: registration of JavaScript memory in place.
//!
//! The handle owns the registration and a Node-API reference to the buffer
//! it covers, so the buffer's memory stays put while the device may touch it.
//! Deregistration happens before the reference is released (field order).
//! Work batches share the binding (`Arc`), so closing a region they use is
//! refused with EBUSY.

use super::protection_domain::pd_arg;
use super::set_number;
use crate::error::{Result, VerbsError};
use std::sync::Arc;
use crate::memory_region::{Access, MemoryRegion};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::*;
use crate::napi::Env;

pub(super) const KIND: &str = "MemoryRegion";

/// Access bits as JavaScript passes them (same as IBV_ACCESS_*).
const ACCESS_LOCAL_WRITE: u32 = 1;
const ACCESS_REMOTE_WRITE: u32 = 2;
const ACCESS_REMOTE_READ: u32 = 4;

/// A strong reference keeping a JavaScript buffer alive.
pub(super) struct BufferReference {
    env: napi_env,
    reference: napi_ref,
}

impl Drop for BufferReference {
    fn drop(&mut self) {
        // SAFETY: the reference was made in env, and handles are dropped on
        // env's JavaScript thread (close or finalizer) while env is alive.
        unsafe { napi_delete_reference(self.env, self.reference) };
    }
}

/// A registration and the buffer it covers. Fields drop in order:
/// deregister first, then let the buffer go.
pub(super) struct RegionBinding {
    pub(super) region: MemoryRegion,
    _buffer: BufferReference,
}

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "mrRegister", mr_register)?;
    export(env, exports, "mrClose", mr_close)
}

/// The registration inside a MemoryRegion handle argument.
pub(super) fn mr_arg<'a>(env: Env, value: napi_value, name: &str) -> Result<&'a Handle<Arc<RegionBinding>>> {
    unwrap::<Arc<RegionBinding>>(env, value, name, KIND)
}

fn mr_register(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let pd_handle = pd_arg(env, arguments.get(0))?;
    let buffer = arguments.get(1);
    let (address, length) = env.to_bytes(buffer, "buffer")?;
    let access_bits = env.to_u32(arguments.get(2), "access")?;
    let access = Access {
        local_write: access_bits & ACCESS_LOCAL_WRITE != 0,
        remote_write: access_bits & ACCESS_REMOTE_WRITE != 0,
        remote_read: access_bits & ACCESS_REMOTE_READ != 0,
    };
    let mut reference = std::ptr::null_mut();
    // SAFETY: buffer is a live value of this call; one strong count.
    unsafe { napi_create_reference(env.0, buffer, 1, &mut reference) };
    let buffer_reference = BufferReference { env: env.0, reference };
    // SAFETY: the buffer stays alive (the reference above) until after the
    // region is deregistered (RegionBinding's field order).
    let region = pd_handle.with(|pd| unsafe { MemoryRegion::register(pd, address, length, access) })?;
    let (address, length, lkey, rkey) = (region.address(), region.length(), region.lkey(), region.rkey());
    let handle = wrap(env, KIND, Arc::new(RegionBinding { region, _buffer: buffer_reference }))?;
    set_number(env, handle, "address", address as f64)?;
    set_number(env, handle, "length", length as f64)?;
    set_number(env, handle, "lkey", lkey as f64)?;
    set_number(env, handle, "rkey", rkey as f64)?;
    Ok(handle)
}

fn mr_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let handle = mr_arg(env, arguments.get(0), "memoryRegion")?;
    if let Some(binding) = handle.take() {
        if Arc::strong_count(&binding) > 1 {
            handle.restore(binding);
            return Err(VerbsError::from_errno(libc::EBUSY, "close the work batches using this memory region first"));
        }
    }
    env.undefined()
}
