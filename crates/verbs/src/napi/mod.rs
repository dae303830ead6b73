//! Node-API, declared inside the crate (`sys`), with the few safe helpers the
//! objects need: reading and making values (`value`), exported functions
//! that never let a panic or an error escape as anything but a JavaScript
//! exception (`function`), native objects wrapped in JavaScript handles
//! (`handle`), calls from native threads into JavaScript (`threadsafe`), and
//! the per-environment state that makes the addon safe in worker threads
//! (`instance`).

pub mod function;
pub mod handle;
pub mod instance;
pub mod sys;
pub mod threadsafe;
pub mod value;

pub use value::Env;
