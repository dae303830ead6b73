//! A protection domain.
//!
//! Life: allocated on a `Device` by JavaScript (`Device.allocateProtectionDomain`),
//! owned by its handle; every memory region and queue pair made in it holds
//! an `Arc`, so the PD is deallocated only after all of them (closing the
//! handle while they are open is refused with EBUSY). Thread-safe.

use crate::device::Device;
use crate::error::{Result, VerbsError};
use crate::sys;
use std::sync::Arc;

/// An allocated protection domain.
#[derive(Debug)]
pub struct ProtectionDomain {
    raw: *mut sys::ibv_pd,
    device: Arc<Device>,
}

// SAFETY: an ibv_pd may be used from any thread.
unsafe impl Send for ProtectionDomain {}
// SAFETY: as above; no interior mutability.
unsafe impl Sync for ProtectionDomain {}

impl ProtectionDomain {
    /// Allocates a PD on `device`.
    pub fn allocate(device: &Arc<Device>) -> Result<Arc<ProtectionDomain>> {
        // SAFETY: the device context is live while `device` is.
        let raw = unsafe { sys::ibv_alloc_pd(device.context()) };
        if raw.is_null() {
            return Err(VerbsError::from_errno(sys::last_errno(), format!("ibv_alloc_pd on {}", device.name())));
        }
        Ok(Arc::new(ProtectionDomain { raw, device: device.clone() }))
    }

    /// The raw PD.
    pub fn raw(&self) -> *mut sys::ibv_pd {
        self.raw
    }

    /// The device this PD lives on.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }
}

impl Drop for ProtectionDomain {
    fn drop(&mut self) {
        // SAFETY: raw came from ibv_alloc_pd; every MR/QP in it held an Arc
        // to us and is gone, so the PD is free to go.
        let rc = unsafe { sys::ibv_dealloc_pd(self.raw) };
        debug_assert_eq!(rc, 0, "ibv_dealloc_pd failed with children gone");
    }
}
