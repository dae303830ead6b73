//! `pdAllocate`, `pdClose`.

use super::device::device_arg;
use crate::error::{Result, VerbsError};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::napi_value;
use crate::napi::Env;
use crate::protection_domain::ProtectionDomain;
use std::sync::Arc;

pub(super) const KIND: &str = "ProtectionDomain";

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "pdAllocate", pd_allocate)?;
    export(env, exports, "pdClose", pd_close)
}

/// The PD inside a ProtectionDomain handle argument.
pub(super) fn pd_arg<'a>(env: Env, value: napi_value) -> Result<&'a Handle<Arc<ProtectionDomain>>> {
    unwrap::<Arc<ProtectionDomain>>(env, value, "protectionDomain", KIND)
}

fn pd_allocate(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let pd = device_arg(env, arguments.get(0))?.with(ProtectionDomain::allocate)?;
    wrap(env, KIND, pd)
}

fn pd_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let handle = pd_arg(env, arguments.get(0))?;
    if let Some(pd) = handle.take() {
        if Arc::strong_count(&pd) > 1 {
            handle.restore(pd);
            return Err(VerbsError::from_errno(libc::EBUSY, "close the protection domain's memory regions and queue pairs first"));
        }
    }
    env.undefined()
}
