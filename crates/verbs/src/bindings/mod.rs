//! The JavaScript face of each native object: one file per object, each
//! exporting flat functions over handles (`@roce-rpc/verbs` wraps them in
//! typed classes). Everything here runs on a JavaScript thread.

mod cm_id;
mod completion_queue;
mod completion_watch;
mod datagram_socket;
mod device;
mod event_channel;
mod memory_region;
mod protection_domain;
mod queue_pair;
mod release_list;
mod service;
mod work_batch;

use crate::error::Result;
use crate::napi::function::{export, Arguments};
use crate::napi::instance::Instance;
use crate::napi::sys::napi_value;
use crate::napi::Env;

/// Fills `exports` with every native function.
pub fn register(env: Env, exports: napi_value) -> Result<()> {
    Instance::install(env)?;
    export(env, exports, "liveObjects", live_objects)?;
    device::register(env, exports)?;
    protection_domain::register(env, exports)?;
    memory_region::register(env, exports)?;
    completion_queue::register(env, exports)?;
    datagram_socket::register(env, exports)?;
    event_channel::register(env, exports)?;
    cm_id::register(env, exports)?;
    queue_pair::register(env, exports)?;
    release_list::register(env, exports)?;
    service::register(env, exports)?;
    work_batch::register(env, exports)?;
    Ok(())
}

/// `liveObjects()`: open handles per kind in this environment, for leak
/// checks at teardown.
fn live_objects(env: Env, _arguments: &Arguments) -> Result<napi_value> {
    let object = env.object()?;
    for (kind, count) in Instance::get(env)?.open_handles() {
        env.set(object, kind, env.number(count as f64)?)?;
    }
    Ok(object)
}

/// Sets `object[name]` to a number.
fn set_number(env: Env, object: napi_value, name: &str, value: f64) -> Result<()> {
    env.set(object, name, env.number(value)?)
}
