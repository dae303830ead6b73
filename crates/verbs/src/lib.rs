//! roce-verbs: a safe Rust core over libibverbs and librdmacm, and its
//! Node-API face (declared in-crate; no `napi` crate is available here).
//!
//! Objects, each in its own file, with its life told at the top:
//! `device`, `protection_domain`, `memory_region`, `completion_queue`
//! (+ `completion_thread`, `completion_ring`), `event_channel`, `cm_id`
//! (connection id and its queue pair, + `queue_pair_drain`) and
//! `release_list` (over `bounded_list`). `sys` is the raw FFI (with the C shim in
//! native/), `napi` the Node-API declarations and helpers, `bindings` the
//! JavaScript functions over the objects.

pub mod bounded_list;
pub mod bounded_queue;
pub mod cm_id;
pub mod completion_queue;
pub mod completion_ring;
pub mod completion_thread;
pub mod datagram_socket;
pub mod device;
pub mod error;
pub mod event_channel;
pub mod event_loop_poller;
pub mod memory_region;
pub mod protection_domain;
pub mod queue_pair_drain;
pub mod release_list;
pub mod send_queue_account;
pub mod service_backstop;
pub mod service_call_header;
pub mod service_chunks;
pub mod service_completions;
pub mod service_queue;
pub mod service_seat;
pub mod service_transport;
pub mod sys;
pub mod wakeup;

mod bindings;
mod napi;

use napi::sys::{napi_env, napi_value};

/// Node-API's module entry point. Node calls it once per environment (main
/// thread and each worker), which makes the addon context-aware.
///
/// # Safety
/// Called by Node with a live environment and its `exports` object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let env = napi::Env(env);
    let outcome = std::panic::catch_unwind(|| bindings::register(env, exports));
    match outcome {
        Ok(Ok(())) => exports,
        Ok(Err(error)) => {
            napi::function::throw(env, &error);
            std::ptr::null_mut()
        }
        Err(_) => std::ptr::null_mut(),
    }
}

/// The Node-API version this addon needs (threadsafe functions, instance data).
#[no_mangle]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    8
}
