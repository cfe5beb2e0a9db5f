//! The engine's error type, shared by every shmarena crate.

use std::path::PathBuf;

/// Everything that can go wrong when creating, opening or using a region.
///
/// Messages say what happened and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `create` found the file already there.
    #[error("region {0} already exists (open it, or unlink it first)")]
    AlreadyExists(PathBuf),
    /// `open` found no such file.
    #[error("region {0} does not exist")]
    RegionNotFound(PathBuf),
    /// The path leads to something that is not a shmarena region: not a regular file (a
    /// device, a FIFO, a directory, a socket, a dangling symbolic link), or a file that
    /// does not start with the shmarena magic number.
    #[error("{path} is not a shmarena region: it is {what}")]
    NotARegion {
        /// The path given.
        path: PathBuf,
        /// What it is instead ("a character device", "a file without the shmarena magic
        /// number", ...).
        what: String,
    },
    /// The region file can be written by another user: it belongs to another user, or its
    /// mode lets group or others write it. Such a user could read and change every object
    /// and truncate the file (which kills this process with SIGBUS on its next access), so
    /// it is opened only with [`RegionOptions::allow_shared`](crate::RegionOptions::allow_shared).
    #[error("{}", writable_by_others_message(path, *owner_uid, *mode, *euid))]
    WritableByOthers {
        /// The region file.
        path: PathBuf,
        /// The file's owner.
        owner_uid: u32,
        /// The file's permission bits (`st_mode & 0o7777`).
        mode: u32,
        /// This process's effective uid.
        euid: u32,
    },
    /// The region was written by another layout version.
    #[error(
        "region {path} was created by layout version {found}; this build reads version {expected}"
    )]
    VersionMismatch {
        /// The region file.
        path: PathBuf,
        /// Version found in the header.
        found: u64,
        /// Version this build understands.
        expected: u64,
    },
    /// The file is shorter than its header says, or than a header.
    #[error("region {path} is truncated: the file has {file_len} bytes, {needed} are needed")]
    Truncated {
        /// The region file.
        path: PathBuf,
        /// Bytes in the file.
        file_len: u64,
        /// Bytes required.
        needed: u64,
    },
    /// A field of the region holds an impossible value.
    #[error("region is corrupt: {field}: {detail}")]
    Corrupt {
        /// Which field or structure.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The region's creator has not finished initializing it.
    #[error("region {path} is still initializing after {waited_ms} ms{}", if *.creator_dead { " and its creator has died: unlink it and create it again" } else { "" })]
    Initializing {
        /// The region file.
        path: PathBuf,
        /// How long this process waited.
        waited_ms: u64,
        /// Whether the creator is known to be dead.
        creator_dead: bool,
    },
    /// The requested region size is too small or too large.
    #[error("invalid region size {size}: {reason}")]
    InvalidSize {
        /// The size asked for.
        size: u64,
        /// Why it cannot be used.
        reason: String,
    },
    /// An argument is out of its allowed range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The arena has no block of the requested size left.
    #[error("out of memory in {region}: {requested} bytes requested, {available} bytes left unreserved; create the region larger (its file is sparse: room never used costs no memory)")]
    OutOfMemory {
        /// Bytes requested (rounded to the size class).
        requested: u64,
        /// Bytes the bump pointer can still hand out.
        available: u64,
        /// Which region, and its size (`"the region"` where that is not known).
        region: String,
    },
    /// Every catalog entry is taken.
    #[error("the region's catalog is full ({capacity} named objects); create the region with a larger catalog")]
    CatalogFull {
        /// Catalog capacity.
        capacity: u64,
    },
    /// Every participant slot is held by a live process, or retired and not swept yet
    /// (a handle that waits for a slot, see `Region::open`, creates nothing until a sweep
    /// gives it one).
    #[error("all {capacity} participant slots are held by live processes or wait for a sweep")]
    ParticipantsFull {
        /// Participant table capacity.
        capacity: u64,
    },
    /// An object name is empty, too long or contains a NUL byte.
    #[error("invalid object name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No object of that name exists.
    #[error("no object named {0:?} in the region")]
    ObjectNotFound(String),
    /// The named object exists with another type or shape. The types read as Rust types
    /// (`Value<i32>`, `Mutex<16-byte type, align 8>`; see [`TypeDescriptor`]'s `Display`),
    /// with the Python typecode where there is one.
    ///
    /// [`TypeDescriptor`]: crate::TypeDescriptor
    #[error("object {name:?} has type {found}, not {expected}")]
    TypeMismatch {
        /// The object name.
        name: String,
        /// The type the caller asked for.
        expected: String,
        /// The type stored in the catalog.
        found: String,
    },
    /// Another live process holds the object in a state this call has to wait out.
    #[error("timed out after {waited_ms} ms waiting for {what} (held by participant {owner:#x})")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The participant that holds it.
        owner: u32,
        /// How long this process waited.
        waited_ms: u64,
    },
    /// Too many concurrent changes; the operation gave up instead of spinning forever.
    #[error("{0}: too much contention, gave up after many retries")]
    Contended(&'static str),
    /// An index past the end of an array.
    #[error("index {index} out of bounds for length {len}")]
    IndexOutOfBounds {
        /// The index given.
        index: u64,
        /// The length of the array.
        len: u64,
    },
    /// Two lengths that must agree do not.
    #[error("length mismatch: expected {expected}, got {found}")]
    LengthMismatch {
        /// Length required.
        expected: u64,
        /// Length given.
        found: u64,
    },
    /// A barrier was broken: a party died or timed out while others waited, or it was
    /// aborted (Python's `BrokenBarrierError`).
    #[error("the barrier is broken: {0}")]
    BrokenBarrier(&'static str),
    /// A bounded structure has no room left.
    #[error("full: all {capacity} slots are in use")]
    Full {
        /// The structure's capacity.
        capacity: u64,
    },
    /// A queue had no free slot for a push. The push itself hands its element back in
    /// the structures crate's `queue::PushError::Full`; this is what that converts to
    /// (with `?`), the element dropped.
    #[error("the queue is full: every slot holds an element")]
    QueueFull,
    /// A semaphore was released more often than it was acquired.
    #[error("semaphore released too many times: it holds at most {capacity} permits")]
    TooManyReleases {
        /// The most permits the semaphore can hold.
        capacity: u64,
    },
    /// A lock was released (or marked consistent) by a process that does not hold it.
    #[error("lock {0:?} is not held by this process")]
    NotHeld(String),
    /// An arithmetic operation would overflow its type.
    #[error("arithmetic overflow")]
    Overflow,
    /// A stored bit pattern is not a valid value of its type (a `bool` other than 0 or 1,
    /// a `char` that is not a Unicode scalar value).
    #[error("invalid {type_name} bit pattern {bits:#x} in the region")]
    InvalidValue {
        /// The Rust type.
        type_name: &'static str,
        /// The bits found.
        bits: u64,
    },
    /// This machine lacks something the structure needs (for example 128-bit atomics).
    #[error("unsupported on this machine: {0}")]
    Unsupported(&'static str),
}

/// The message of [`Error::WritableByOthers`]: who can write, and what to do.
fn writable_by_others_message(
    path: &std::path::Path,
    owner_uid: u32,
    mode: u32,
    euid: u32,
) -> String {
    let path = path.display();
    let (who, fix) = if owner_uid == euid {
        let writers = match mode & 0o022 {
            0o020 => "its group",
            0o002 => "every user",
            _ => "its group and every user",
        };
        (
            format!("its mode {mode:04o} lets {writers} write it"),
            format!("`chmod go-w {path}`"),
        )
    } else {
        (
            format!(
                "it belongs to uid {owner_uid}, not to this process's uid {euid} (mode {mode:04o})"
            ),
            "use another name, or have its owner remove it".to_owned(),
        )
    };
    format!(
        "region {path} can be written by another user: {who}. That user can read and change \
         every object in it, and truncate it to crash this process (SIGBUS). If that is not \
         meant, {fix}; to share a region between users on purpose, open it with allow_shared"
    )
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error out of its box: what an out-of-line step of an operation answers with, so that
/// its `Result` comes back in registers (a `Result` holding an `Error` is a block of memory).
impl From<Box<Error>> for Error {
    fn from(error: Box<Error>) -> Self {
        *error
    }
}

impl Error {
    #[cfg_attr(loom, allow(dead_code))] // only the region (not built under loom) does I/O
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`Error::OutOfMemory`] of `requested` bytes with `available` left, in the region
    /// `memory` maps (named and sized when it is a mapping).
    pub fn out_of_memory(requested: u64, available: u64, memory: &impl crate::Memory) -> Self {
        let region = match memory.path() {
            Some(path) => format!("region {} of {} bytes", path.display(), memory.len()),
            None => format!("the region of {} bytes", memory.len()),
        };
        Error::OutOfMemory {
            requested,
            available,
            region,
        }
    }

    /// A [`Error::Corrupt`] for `field`.
    pub fn corrupt(field: &'static str, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            field,
            detail: detail.into(),
        }
    }
}
