//! A memory region: memory registered with a protection domain.
//!
//! Life: registered by JavaScript over a Node `Buffer`/TypedArray without
//! copying it (`ProtectionDomain.registerMemory`). The JavaScript binding
//! holds a Node-API reference to the buffer for as long as the registration
//! lives, so the memory cannot be collected under the device. `close()`
//! deregisters at once; the finalizer does it if JavaScript forgets.
//! The region holds its PD alive. Thread-safe (immutable after creation).

use crate::error::{check, Result, VerbsError};
use crate::protection_domain::ProtectionDomain;
use crate::sys;
use std::sync::Arc;

/// Access rights of a registration (`IBV_ACCESS_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    pub local_write: bool,
    pub remote_write: bool,
    pub remote_read: bool,
}

impl Access {
    fn flags(self) -> i32 {
        let mut flags = 0;
        if self.local_write {
            flags |= sys::IBV_ACCESS_LOCAL_WRITE;
        }
        if self.remote_write {
            flags |= sys::IBV_ACCESS_REMOTE_WRITE;
        }
        if self.remote_read {
            flags |= sys::IBV_ACCESS_REMOTE_READ;
        }
        flags
    }
}

/// A registered memory region.
#[derive(Debug)]
pub struct MemoryRegion {
    raw: *mut sys::ibv_mr,
    pd: Arc<ProtectionDomain>,
    address: u64,
    length: u64,
    lkey: u32,
    rkey: u32,
}

// SAFETY: an ibv_mr may be used from any thread; our fields are immutable.
unsafe impl Send for MemoryRegion {}
// SAFETY: as above.
unsafe impl Sync for MemoryRegion {}

impl MemoryRegion {
    /// Registers `length` bytes at `address`.
    ///
    /// # Safety
    /// The memory must stay valid (not freed, not moved) until the region is
    /// dropped; the JavaScript binding guarantees it with a buffer reference.
    pub unsafe fn register(pd: &Arc<ProtectionDomain>, address: *mut u8, length: usize, access: Access) -> Result<MemoryRegion> {
        if length == 0 {
            return Err(VerbsError::invalid("cannot register an empty buffer"));
        }
        if access.remote_write && !access.local_write {
            return Err(VerbsError::invalid("remoteWrite access requires localWrite (an rdma-core rule)"));
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: pd is live; the caller vouches for the memory.
        check(
            unsafe { sys::roce_reg_mr(pd.raw(), address.cast(), length, access.flags(), &mut raw) },
            format!("ibv_reg_mr of {length} bytes"),
        )?;
        // SAFETY: raw is the region just registered.
        let (lkey, rkey) = unsafe { (sys::roce_mr_lkey(raw), sys::roce_mr_rkey(raw)) };
        Ok(MemoryRegion { raw, pd: pd.clone(), address: address as u64, length: length as u64, lkey, rkey })
    }

    /// Start address of the registered memory.
    pub fn address(&self) -> u64 {
        self.address
    }
    /// Registered length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }
    /// Key for local access (SGEs).
    pub fn lkey(&self) -> u32 {
        self.lkey
    }
    /// Key a peer uses for RDMA Read/Write into this region.
    pub fn rkey(&self) -> u32 {
        self.rkey
    }
    /// The PD this region belongs to.
    pub fn protection_domain(&self) -> &Arc<ProtectionDomain> {
        &self.pd
    }

    /// The SGE for `length` bytes at `offset`, or EINVAL if any byte of it
    /// falls outside this region (checked here, not left to the device).
    pub fn sge(&self, offset: u64, length: u64) -> Result<sys::ibv_sge> {
        let end = offset.checked_add(length);
        if length > u32::MAX as u64 || end.is_none_or(|end| end > self.length) {
            return Err(VerbsError::invalid(format!(
                "SGE [{offset}, {offset}+{length}) lies outside its memory region of {} bytes",
                self.length
            )));
        }
        Ok(sys::ibv_sge { addr: self.address + offset, length: length as u32, lkey: self.lkey })
    }
}

impl Drop for MemoryRegion {
    fn drop(&mut self) {
        // SAFETY: raw came from ibv_reg_mr and is deregistered once.
        let rc = unsafe { sys::ibv_dereg_mr(self.raw) };
        debug_assert_eq!(rc, 0, "ibv_dereg_mr failed");
    }
}
