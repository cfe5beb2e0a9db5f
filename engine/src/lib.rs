//! The shmarena engine: the shared region every structure lives in.
//!
//! A region is a file (by default in `/dev/shm`) mapped by many processes. It holds a
//! validated header, a participant table with kernel-backed liveness, a catalog of named
//! objects and a lock-free arena allocator. Structures (in the `shmarena` crate) are
//! built on [`Region::get_or_create_object`] and reach their memory as atomics.
//!
//! Under `--cfg loom` only the algorithm cores (arena, catalog, liveness, the `sync`
//! shim) are built, over [`HeapMemory`], so loom checks the code that ships.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod arena;
pub mod barrier;
pub mod catalog;
mod error;
#[cfg(not(loom))]
pub mod fork;
pub mod futex;
#[cfg(not(loom))]
pub mod gc;
pub mod grace;
pub mod layout;
pub mod liveness;
pub mod memory;
#[cfg(not(loom))]
pub mod participants;
#[cfg(not(loom))]
pub mod reclaim;
#[cfg(not(loom))]
mod region;
#[cfg(not(loom))]
pub mod retire_log;
pub mod sync;
#[cfg(not(loom))]
pub mod verify;

pub use arena::{Arena, ArenaStats, Block};
pub use catalog::{Catalog, EntryInfo, ObjectKind, Outcome, TypeDescriptor, USER_TYPE_CODE};
pub use error::{Error, Result};
pub use layout::HeaderFields;
pub use liveness::{Liveness, OwnerId};
pub use memory::{HeapMemory, Memory};
#[cfg(not(loom))]
pub use participants::ParticipantInfo;
#[cfg(not(loom))]
pub use reclaim::{Blob, StagedBlob};
#[cfg(not(loom))]
pub use region::{
    resolve_path, GracePin, MappedMemory, Object, Region, RegionOptions, SharedAtomic, DRAIN_LIMIT,
    PUNCH_MIN,
};
#[cfg(not(loom))]
pub use verify::{Finding, Severity};
