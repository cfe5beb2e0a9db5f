//! A map that grows while any number of processes use it: a chain of tables, each twice
//! the size of the one before, and the migration from one to the next (`migrate.rs`).
//!
//! ```text
//! root word (map header): | generation: 8 | id of the oldest table still in use: 56 |
//! table header: NEXT (id of the next table, 0 while none), CURSOR (chunks handed out),
//!               CAPACITY, then a bitmap of migrated chunks
//! ```
//!
//! - **Growth** starts when an insert finds no free slot within [`GROW_PROBE`] slots of its
//!   key's home in a table at least 3/4 full (or within the whole probe limit, whatever
//!   the load): it claims the table's `NEXT` word (a compare-exchange of 0 to
//!   [`GROWING`] and its owner), makes a zeroed table of twice the capacity and links it
//!   there (a compare-exchange of its claim to the new table's id). One process makes the
//!   next table at a time: processes that fill a table together would otherwise each
//!   make one, and in a region sized for the map all but one would fail for want of
//!   memory. An insert that finds the table claimed walks on to the probe limit (the
//!   table is 3/4 full, not full) and waits for the claimant only when that finds no
//!   room; the wait is bounded ([`GROW_PATIENCE`]): a claimant found dead, or still
//!   claiming when the patience runs out (frozen), is taken over (a compare-exchange of
//!   its claim to the waiter's), and its own link then fails and gives its table back.
//!   So at most one table is being made per patience period, whatever the number of
//!   processes. Only the root grows: a table still receiving a migration finishes that
//!   first, so at most two tables are in use at once, and the root is migrating exactly
//!   while it has a next.
//! - **The blocks of a table being made** are recorded, so that a maker's death does not leak
//!   them: a maker records each block it takes in the old table's
//!   [`MADE`](super::migrate::MADE) header words, naming itself, as soon as the allocation
//!   returns it (before the block is zeroed), and clears its records just before its link
//!   (or, on an error, before it gives the blocks back). A record thus names a block that is
//!   not linked, and its maker, once dead, never links it: a process that next claims the
//!   growth (or comes back to a claim taken over), and the one that moves the root past the
//!   table, give back what dead makers recorded ([`Tables::give_back_made`]), and so does
//!   each handle as it opens the map ([`GrowingMap::give_back_made`]), and the
//!   participant sweep rewrites a record's owner as it does every owner field. What a death
//!   still leaks: a block taken in the few instructions before its record, or given up after
//!   its record was cleared (before a link that then fails, or by a give-back that dies
//!   before its free); the blocks of a maker whose records another thread of its process
//!   cleared; and those of a maker whose claim was taken over while it was frozen and that is
//!   killed after the root moved past the table (the taker's own blocks go unrecorded while
//!   the frozen maker's records hold the words). Each such leak is one table, and needs a
//!   death inside a window of a few instructions or a frozen maker.
//! - **Migration** is incremental: every operation that goes on past a migrating table
//!   (an insert of a key its first look did not find, and any operation whose key's home
//!   there is frozen; the others are answered in that table) first migrates one chunk of
//!   [`CHUNK`](super::migrate::CHUNK) slots (taking the next ticket of `CURSOR`; once the
//!   tickets run out, the first chunk whose bit is still clear: a frozen or dead mover's
//!   chunk is done again by others, each slot's migration being idempotent), then its own
//!   key's probe range, and goes on in the next table. A read
//!   looks in each table in turn and writes only where it meets a committed copy not yet
//!   published.
//! - **Completion**: when every chunk's bit is set, the root word moves on to the next
//!   table, its generation one more (a compare-exchange; whoever sees the bitmap full may
//!   do it, so a mover that dies after the last bit leaves nothing undone). The winner
//!   retires the old table ([`Tables::retire`]): its memory returns to the arena after a
//!   grace period. (The first table lives in the map's body and is never freed.)
//!
//! **Who may look at a table that can be freed.** Every operation that reads the root word
//! and follows it (inserts, the slow paths, iterations, tools) holds a grace-period pin
//! ([`Tables::pin`]) from before that read until it is done with the tables it found, on
//! any map that grew. Lookups on a map's fast path take no pin: they read the table this
//! handle found at the root last ([`Tables::guess`]) and then *validate* (seqlock-style):
//! an Acquire fence, then the root word read again. The root word never repeats (its
//! generation only grows), so if it still names the guessed table, the table was not
//! retired (which follows the root's move) before the lookup's loads, and their answer
//! stands; otherwise the lookup starts again from the root, pinned. A lookup that read a
//! retired table's memory after it was freed and reused reads the reuse's writes, which
//! come after the move; the fence then makes its re-read see the move. (In the language's
//! model that takes the reusing writer's Release fence (the arena's allocation ends with
//! one, and the loom model's reuse has one); for writes made later by other processes into
//! the reused block, it takes the hardware's multi-copy atomicity, as on x86-64 and
//! AArch64.) Such a lookup reads atomics only, within the table's bounds as remembered,
//! and makes no write: memory that is not a table costs a retry, never a wrong answer.
//! Inserts, updates and removals on the guessed table of a map that grew pin first and
//! then check that the root still names it: if the root moved before the pin, the check
//! sees it; if after, the retirement's grace period waits for the pin.
//!
//! `len` is kept in the map's counters, shared by all its tables (a migrated key is not
//! counted again).

use super::migrate::{chunks, names, BITMAP, CURSOR, NEXT};
use super::{
    frozen, hash_key, kind, Boxed, Dynamic, First, Found, KeyAccess, RawMap, Read, Shape, Slots,
    Step, Updated, ARRIVED, COMMITTED, INSERTING, MAX_RETRIES, MEMBER, MOVING,
};
use shmarena_engine::sync::{fence, AtomicU64, Backoff, Ordering};
use shmarena_engine::{Error, Liveness, OwnerId, Result};

/// What a first look on the table a handle last found at the root, under a pin, came to
/// (see [`GrowingMap::update_on_guess`]): `Some(Some(answer))`; `Some(None)` when the look
/// did not answer (the walk of the same table, under the same pin, follows); `None` when
/// the root moved past that table (the whole way over the chain follows).
// An option of an option, not an enum of three: measured with `map_ops`, the enum made a
// `fetch_add` on a map that grew 23 instructions longer.
#[allow(clippy::option_option)]
pub(crate) type Guessed<T> = Option<Option<T>>;

/// Where a growing map's tables live: the region, or a loom model's heap.
pub trait Tables {
    /// One table's memory.
    type Slots: Slots;
    /// A grace-period pin: no table retired after it was taken is freed until it drops.
    type Pin;
    /// The root word: the id of the oldest table still in use and its generation (see
    /// [`root_id`]).
    fn root(&self) -> &AtomicU64;
    /// The first table (id 0), validated when the map was opened.
    fn first(&self) -> Self::Slots;
    /// The table this handle last found at the root ([`Tables::remember`]) and the root
    /// word it was found at: where lookups start, without reading shared memory. A table
    /// the root has passed may be named (even one freed since: lookups validate against
    /// the root word, see the module docs). `None`: the first table ([`Tables::first`];
    /// kept apart so that a map that never grew reads nothing more).
    fn guess(&self) -> Option<(Self::Slots, u64)>;
    /// Remembers that a table of `capacity` slots was found at the root, the root word
    /// being `root`.
    fn remember(&self, root: u64, capacity: u64);
    /// The table with id `id`, validated: its capacity a power of two up to
    /// [`MAX_CAPACITY`], its memory in bounds.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for an id that names no such table.
    fn table(&self, id: u64) -> Result<Self::Slots>;
    /// Makes a table of `capacity` slots, zeroed but for its `CAPACITY` header word, not
    /// yet reachable: its id (never 0, below `1 << ROOT_ID_BITS`). Each block it takes is
    /// recorded in its word of `made` (the [`MADE`](super::migrate::MADE) header words of
    /// the table it is to follow: the slots' block in the first, the header's in the
    /// second) with
    /// [`record_made`] as soon as it is taken, so that should the maker die before the
    /// link, the block is given back ([`Tables::give_back_made`]; module docs). The
    /// caller clears its records ([`clear_made`]) before it links; a block `make` gives
    /// back itself (on an error) has its record cleared first.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when there is no room for it.
    fn make(&self, capacity: u64, made: [&AtomicU64; 2], maker: OwnerId) -> Result<u64>;
    /// Gives back a table `make` made that never became reachable.
    fn discard(&self, id: u64, capacity: u64);
    /// Gives back every block recorded in `made` (the [`MADE`](super::migrate::MADE) header
    /// words of a table whose next one is or was made) by a maker that is dead, for a next
    /// table of
    /// `capacity` slots. A record still there names a block nobody can reach: a maker
    /// clears its records before it links, and a dead one neither links nor records any
    /// more. The record is cleared with a compare-exchange from the value judged before
    /// the block is freed: it succeeds only on the latest value of the word, so a record
    /// cleared since is never acted on, and a block is given back once. A value the
    /// compare-exchange finds instead, naming the same block, is judged again (once): the
    /// sweep's rewrite of its owner, or the block given back and recorded again by a
    /// maker whose liveness is then asked. Asks about liveness only for a record present.
    /// See [`give_back_records`].
    fn give_back_made(&self, capacity: u64, made: [&AtomicU64; 2], liveness: &impl Liveness);
    /// Retires table `id` of `capacity` slots, which the root has just moved past: it is
    /// freed once every pin taken before the move has dropped.
    fn retire(&self, id: u64, capacity: u64);
    /// Pins (see [`Tables::Pin`]), before reading the root word.
    ///
    /// # Errors
    /// What the grace period reports (a handle with no participant slot cannot pin).
    fn pin(&self) -> Result<Self::Pin>;
}

/// Bits of the root word that hold its table's id; the bits above count the root's moves
/// (the table's generation: the first table's is 0), so that a root word never repeats.
pub const ROOT_ID_BITS: u32 = 56;

/// The id of the table a root word names.
#[inline]
pub fn root_id(root: u64) -> u64 {
    root & ((1 << ROOT_ID_BITS) - 1)
}

/// How many times the root had moved when it named this table.
#[inline]
pub fn root_generation(root: u64) -> u64 {
    root >> ROOT_ID_BITS
}

/// The root word of table `next`, linked after the table of root word `root`.
#[inline]
fn root_after(root: u64, next: u64) -> u64 {
    root_id(next) | (root_generation(root).wrapping_add(1) << ROOT_ID_BITS)
}

/// An insert into a table of more than this many slots looks this far from its key's home
/// for a free slot before it reads the load (the len counters): at 3/4 the table grows,
/// below it the insert looks on to the probe limit.
pub const GROW_PROBE: u64 = 32;

/// The largest table (slot numbers fit in the 32 bits a commit records).
pub const MAX_CAPACITY: u64 = 1 << 32;

/// A table's `NEXT` word while a process makes the next table: this bit and the
/// claimant's owner bits (see the module docs). Table ids are below `1 << ROOT_ID_BITS`,
/// so a word with this bit names no table.
pub const GROWING: u64 = 1 << 63;

/// How long an insert that needs the next table waits for a live process that is making
/// it, before it takes the claim over (and makes the table itself). Making a table is an
/// allocation (whose pages are given back to the file system, not written): the wait ends
/// long before this unless the claimant is frozen or off its CPU for longer than a
/// scheduler's time slice. The clock restarts whenever the claim changes hands, so that
/// waiters whose patience ran out do not take over each other's fresh claims. (A loom
/// model waits as long as the claimant takes.)
pub const GROW_PATIENCE: std::time::Duration = std::time::Duration::from_millis(20);

/// The bounded wait for a claimant that is making the next table ([`GROW_PATIENCE`]).
struct Patience {
    /// Pauses so far.
    pauses: u32,
    #[cfg(not(loom))]
    since: Option<std::time::Instant>,
}

impl Patience {
    fn new() -> Self {
        Self {
            pauses: 0,
            #[cfg(not(loom))]
            since: None,
        }
    }

    /// Whether to wait on: true until the patience has run out (the clock starts at the
    /// first call).
    fn lasts(&mut self) -> bool {
        self.pauses += 1;
        #[cfg(not(loom))]
        return self
            .since
            .get_or_insert_with(std::time::Instant::now)
            .elapsed()
            < GROW_PATIENCE;
        // A model waits as long as the claimant takes (it cannot freeze one; a dead one's
        // claim is taken over at once, without waiting).
        #[cfg(loom)]
        return true;
    }

    /// Whether this pause is one to ask the system whether the claimant lives (the first
    /// and every 64th: a system call).
    fn asks(&self) -> bool {
        self.pauses % 64 == 1
    }
}

/// A record of a block taken for the next table ([`Tables::make`]): the maker's owner bits
/// (high half) and the block's region offset in units of 64 bytes (low half: arena blocks
/// are 64-byte aligned, and a region is at most 2^38 bytes).
#[inline]
pub fn made_record(maker: OwnerId, offset: u64) -> u64 {
    u64::from(maker.bits()) << 32 | (offset / 64)
}

/// The maker a [`made_record`] names (`None` for a word that names no owner), and the
/// block's region offset.
#[inline]
pub fn made_block(record: u64) -> (Option<OwnerId>, u64) {
    (
        OwnerId::from_bits((record >> 32) as u32),
        (record & 0xffff_ffff) * 64,
    )
}

/// Records block `offset` in `word` as `maker`'s (see [`Tables::make`]), unless another
/// record is in the way (a frozen maker's whose claim was taken over, another thread's of
/// this process, or a dead maker's not given back yet); then the block goes unrecorded.
pub fn record_made(word: &AtomicU64, maker: OwnerId, offset: u64) {
    // Relaxed: a reader that misses the record leaks the block, as it would without
    // records; one that reads a record its maker has cleared since fails its
    // compare-exchange of it (see `Tables::give_back_made`).
    let _ = word.compare_exchange(
        0,
        made_record(maker, offset),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

/// The give-back of [`Tables::give_back_made`]: for each record in `made` whose maker is
/// dead (or that names no owner: a hostile word is as good as a dead one's), clears the
/// record with a compare-exchange from the value judged and then calls
/// `free(which, offset)` (`which`: 0 for the slots' block, 1 for the header's). A value
/// found instead that names the same block is judged again, once; after that the record
/// is left (a block that may leak, never one freed wrongly).
pub fn give_back_records(
    made: [&AtomicU64; 2],
    liveness: &impl Liveness,
    mut free: impl FnMut(usize, u64),
) {
    for (which, word) in made.into_iter().enumerate() {
        // Acquire: a record the sweep rewrote (SeqCst) to name no live owner is judged
        // without a system call; this orders the maker's writes into the block, long
        // before, ahead of our free.
        let mut seen = word.load(Ordering::Acquire);
        // Twice at most: enough for the sweep's one rewrite of a dead owner (to
        // `OwnerId::DEAD`), and bounded whatever a hostile word does.
        for _ in 0..2 {
            let (maker, offset) = made_block(seen);
            if seen == 0 || maker.is_some_and(|maker| liveness.is_alive(maker)) {
                break;
            }
            // The record first (as in `make`): a compare-exchange succeeds only on the
            // word's latest value, so a record cleared since (given back by another
            // process, or by a resumed maker) is not ours to free.
            // Relaxed on success: see `record_made`; Acquire on failure, as the load.
            match word.compare_exchange(seen, 0, Ordering::Relaxed, Ordering::Acquire) {
                Ok(_) => {
                    free(which, offset);
                    break;
                }
                // The same block under another owner (the sweep's rewrite, or the block
                // given back and recorded again by a new maker): judged again, liveness
                // included, as a fresh look would judge it.
                Err(now) if now != 0 && made_block(now).1 == offset => seen = now,
                Err(_) => break,
            }
        }
    }
}

/// Clears `maker`'s records in `made`, before it links its table or gives the blocks
/// back.
pub fn clear_made(made: [&AtomicU64; 2], maker: OwnerId) {
    for word in made {
        // Relaxed: as in `record_made`.
        let seen = word.load(Ordering::Relaxed);
        if seen != 0 && made_block(seen).0 == Some(maker) {
            // A failure: another thread of this process (the same owner) cleared it.
            let _ = word.compare_exchange(seen, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

/// The owner bits a `NEXT` word holding a claim ([`GROWING`]) names, if it is one and they
/// fit an owner id's 31 bits.
#[inline]
pub(crate) fn claim_owner_bits(next: u64) -> Option<u32> {
    let bits = next & !GROWING;
    (next & GROWING != 0 && bits <= 0x7fff_ffff).then_some(bits as u32)
}

/// Whether a `NEXT` word links no table: none, or one being made ([`GROWING`], the top
/// bit: one signed comparison on the operations' fast paths).
#[inline]
pub fn links_none(next: u64) -> bool {
    #[allow(clippy::cast_possible_wrap)] // the point: the top bit reads as the sign
    let signed = next as i64;
    signed <= 0
}

/// What [`GrowingMap::grow`] left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Growth {
    /// A next table is linked, or the root has moved: the operation starts again.
    Linked,
    /// Another live process is making the next table.
    Claimed,
}

/// One table of a chain over `T`, as the algorithm sees it.
type TableOf<T, Sh> = RawMap<<T as Tables>::Slots, Sh>;

/// Most tables a chain can hold: capacities at least double from one to the next.
const MAX_TABLES: usize = 34;

/// The map algorithm over a chain of tables: what the handles and loom models run.
#[derive(Clone, Copy, Debug)]
pub struct GrowingMap<T, Sh = Dynamic> {
    tables: T,
    shape: Sh,
    seed: u64,
}

/// Where an iteration ([`GrowingMap::next_entry`]) stands, and the pin that keeps the
/// tables it walks from being freed under it.
pub struct Walk<P> {
    table: u64,
    slot: u64,
    first: bool,
    done: bool,
    _pin: P,
}

impl<P> std::fmt::Debug for Walk<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("table", &self.table)
            .field("slot", &self.slot)
            .field("first", &self.first)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

fn too_many_tables() -> Error {
    Error::corrupt(
        "hash map tables",
        format!("a chain of more than {MAX_TABLES} tables"),
    )
}

fn no_next() -> Error {
    Error::corrupt(
        "hash map tables",
        "a frozen slot in a table with no next table".to_owned(),
    )
}

impl<T: Tables> GrowingMap<T> {
    /// The map over `tables`, for keys and values of these many words, hashing with `seed`.
    #[inline]
    pub fn new(tables: T, key_words: usize, value_words: usize, seed: u64) -> Self {
        Self::with_shape(tables, Dynamic::new(key_words, value_words), seed)
    }
}

impl<T: Tables, Sh: Shape> GrowingMap<T, Sh> {
    /// The map over `tables`, for keys and values of `shape`, hashing with `seed`.
    #[inline]
    pub fn with_shape(tables: T, shape: Sh, seed: u64) -> Self {
        Self {
            tables,
            shape,
            seed,
        }
    }

    /// The tables.
    pub fn tables(&self) -> &T {
        &self.tables
    }

    /// The algorithm over one table (whose capacity [`Tables::table`] checked).
    // Always: measured (callgrind) to keep every operation's fast path one function.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn raw(&self, slots: T::Slots) -> RawMap<T::Slots, Sh> {
        RawMap::with_shape(slots, self.shape, self.seed)
    }

    /// The hash of a key, the same in every process.
    #[inline]
    pub fn hash(&self, key: &[u64]) -> u64 {
        hash_key(key, self.seed)
    }

    /// The oldest table still in use, and the root word naming it. The caller holds a pin
    /// (or the map never grew).
    fn root(&self) -> Result<(u64, RawMap<T::Slots, Sh>)> {
        // Acquire: pairs with the Release that linked the table (its zeroed words).
        let root = self.tables.root().load(Ordering::Acquire);
        // A map that never grew uses its first table, checked at open.
        let slots = if root == 0 {
            self.tables.first()
        } else {
            self.tables.table(root_id(root))?
        };
        self.tables.remember(root, slots.capacity());
        Ok((root, self.raw(slots)))
    }

    /// Whether the root word is still `root`, read after the loads before it: then the
    /// table it names was not retired before they read it (module docs).
    #[inline]
    fn still_root(&self, root: u64) -> bool {
        // Acquire fence: the table's loads above come before the re-read, so that one that
        // read a reuse's write (made after the root moved on) sees the move.
        fence(Ordering::Acquire);
        // Relaxed: ordered by the fence.
        self.tables.root().load(Ordering::Relaxed) == root
    }

    /// A pin, then whether the root word is still `root` (module docs: after the pin, the
    /// guessed table is one a retirement waits for, or the root has moved).
    #[inline]
    fn pinned_at(&self, root: u64) -> Result<Option<T::Pin>> {
        let pin = self.tables.pin()?;
        // SeqCst: after the pin's SeqCst fence, this load sees any move of the root (a
        // SeqCst compare-exchange) that precedes the fence in the total order.
        Ok((self.tables.root().load(Ordering::SeqCst) == root).then_some(pin))
    }

    /// The table after `table`, if it is being migrated.
    #[inline]
    fn next_of(&self, table: &RawMap<T::Slots, Sh>) -> Result<Option<(u64, TableOf<T, Sh>)>> {
        // Acquire: pairs with the Release compare-exchange that linked it.
        let id = table.header(NEXT).load(Ordering::Acquire);
        if links_none(id) {
            return Ok(None);
        }
        let next = self.raw(self.tables.table(id)?);
        if next.capacity() <= table.capacity() {
            return Err(Error::corrupt(
                "hash map tables",
                format!(
                    "a table of {} slots follows one of {}",
                    next.capacity(),
                    table.capacity()
                ),
            ));
        }
        Ok(Some((id, next)))
    }

    /// Runs `f` on the newest table, after the probe range of `hash` was migrated out of
    /// every older one (and each migration was helped by a chunk). The table is built in
    /// place and lent, not returned: on the fast path (a map that never grew) nothing but
    /// `f`'s answer is moved. A map that grew is pinned for the call.
    // Always: measured (callgrind) to keep every operation's fast path one function.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn on_newest<R>(
        &self,
        hash: u64,
        liveness: &impl Liveness,
        f: impl FnOnce(&RawMap<T::Slots, Sh>) -> Result<R>,
    ) -> Result<R> {
        match self.only_first() {
            Some(table) => f(&table),
            None => self.on_newest_pinned(hash, liveness, f),
        }
    }

    /// The first table, if the map never grew (no other table is reachable, and the first
    /// is never freed: no pin).
    // Always: on every operation's fast path (see `on_newest`).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn only_first(&self) -> Option<RawMap<T::Slots, Sh>> {
        // Acquire: as in `root` (spelled out: no `Result` to carry on the fast path).
        if self.tables.root().load(Ordering::Acquire) != 0 {
            return None;
        }
        let table = self.raw(self.tables.first());
        // Acquire: as in `next_of`.
        links_none(table.header(NEXT).load(Ordering::Acquire)).then_some(table)
    }

    /// `on_newest` on a map that grew or is growing.
    #[cold]
    #[inline(never)]
    fn on_newest_pinned<R>(
        &self,
        hash: u64,
        liveness: &impl Liveness,
        f: impl FnOnce(&RawMap<T::Slots, Sh>) -> Result<R>,
    ) -> Result<R> {
        let _pin = self.tables.pin()?;
        let (root, table) = self.root()?;
        let newest = self.migrated_for(root, table, hash, liveness)?;
        f(&newest)
    }

    /// The newest table after `table` (root word `root`), after the probe range of `hash`
    /// was migrated out of every one before it (see `on_newest`; the caller holds a pin).
    fn migrated_for(
        &self,
        mut root: u64,
        mut table: RawMap<T::Slots, Sh>,
        hash: u64,
        liveness: &impl Liveness,
    ) -> Result<RawMap<T::Slots, Sh>> {
        for _ in 0..MAX_TABLES {
            let Some((next_id, next)) = self.next_of(&table)? else {
                return Ok(table);
            };
            let next_root = root_after(root, next_id);
            self.help(root, &table, next_root, &next, liveness)?;
            table.migrate_key(hash, &next, liveness)?;
            (root, table) = (next_root, next);
        }
        Err(too_many_tables())
    }

    /// Copies the value of `key` into `out`; whether the key is present. Writes only to
    /// publish a migrated copy of the key that its mover left unpublished.
    ///
    /// # Errors
    /// As [`RawMap::get`].
    #[inline]
    pub fn get(&self, key: &[u64], out: &mut [u64], liveness: &impl Liveness) -> Result<bool> {
        let hash = self.hash(key);
        match self.get_first(hash, key, out) {
            Some(found) => Ok(found),
            None => self.get_after_first(hash, key, out, liveness),
        }
    }

    /// [`Self::get`] after its first look ([`Self::get_first`]) did not answer: the walk
    /// of one table ([`Self::get_fast`]), then the chain.
    ///
    /// # Errors
    /// As [`Self::get`].
    #[inline]
    pub(crate) fn get_after_first(
        &self,
        hash: u64,
        key: &[u64],
        out: &mut [u64],
        liveness: &impl Liveness,
    ) -> Result<bool> {
        match self.get_fast(hash, key, out) {
            Some(found) => Ok(found),
            None => self.get_in_chain(hash, key, out, liveness),
        }
    }

    /// `get`'s fast path: one table's lookup, in the table this handle found at the root
    /// last, reading no other shared word before it (measured: a load of the root word
    /// before every lookup halved the speed of large tables; after it, to validate a
    /// table that may have been freed, it is off the lookup's path). See `settled_here`.
    /// The first table is never freed: no validation. `None`: ask [`Self::get_in_chain`]
    /// (a growth met, a pending copy of the key, a table retired under the lookup, or an
    /// error, which the chain's pinned lookup reports if it stands).
    ///
    /// Calls nothing out of line with this map's address, so that a caller that builds
    /// the map for one call keeps it in registers (measured: ~40 stores and loads of its
    /// fields per lookup when a cold call took `&self`).
    #[inline]
    pub(crate) fn get_fast(&self, hash: u64, key: &[u64], out: &mut [u64]) -> Option<bool> {
        // An error too may come from a freed table: validated like an answer.
        self.unpinned(|table| table.lookup_here(hash, key, Some(out)).ok().flatten())
    }

    /// `get`'s first look: [`Self::get_fast`] when the first slot the walk would visit
    /// answers ([`RawMap::find_first`]), in straight-line code; `None` sends the caller to
    /// `get_fast` (then to the chain).
    // Always: a typed map's `get` puts its first look in its caller (see there); spelled
    // out, as a closure's body the compiler left out of line.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn get_first(&self, hash: u64, key: &[u64], out: &mut [u64]) -> Option<bool> {
        let (guess, root) = self.guess_or_first();
        let answer = self.raw(guess).lookup_first(hash, key, Some(out));
        self.validated(root, answer)
    }

    /// `look`'s answer from the table lookups start at ([`Self::guess_or_first`]), read
    /// without a pin, if that table was not retired before the reads (the first table,
    /// root word 0, never is).
    // Always: the frame of every lookup's fast path (a closure call to fold away).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn unpinned(&self, look: impl FnOnce(&RawMap<T::Slots, Sh>) -> Option<bool>) -> Option<bool> {
        let (guess, root) = self.guess_or_first();
        let answer = look(&self.raw(guess));
        self.validated(root, answer)
    }

    /// `answer`, read from the table of root word `root` without a pin, if that table was
    /// not retired before the reads (see `unpinned`).
    #[allow(clippy::inline_always)] // Always: part of `unpinned`.
    #[inline(always)]
    fn validated(&self, root: u64, answer: Option<bool>) -> Option<bool> {
        fail::fail_point!("hash_map::lookup_before_validate", |_| None);
        if root == 0 || self.still_root(root) {
            answer
        } else {
            None
        }
    }

    /// The table lookups start at ([`Tables::guess`], else the first) and the root word
    /// it was found at (0 for the first table, which needs no validation).
    #[inline]
    fn guess_or_first(&self) -> (T::Slots, u64) {
        self.tables
            .guess()
            .unwrap_or_else(|| (self.tables.first(), 0))
    }

    /// `get` over the chain of tables, from the root, pinned.
    #[cold]
    #[inline(never)]
    pub(crate) fn get_in_chain(
        &self,
        hash: u64,
        key: &[u64],
        out: &mut [u64],
        liveness: &impl Liveness,
    ) -> Result<bool> {
        let _pin = self.tables.pin()?;
        let table = self.root_helped(liveness)?;
        self.get_from(table, hash, key, out, liveness)
    }

    /// The root table, after helping its migration by a chunk if it has one: lookups
    /// that come this way (their key's home was frozen) move the migration on too, so
    /// that a map read but no longer written finishes growing. The caller holds a pin.
    fn root_helped(&self, liveness: &impl Liveness) -> Result<RawMap<T::Slots, Sh>> {
        let (root, table) = self.root()?;
        if let Some((next_id, next)) = self.next_of(&table)? {
            self.help(root, &table, root_after(root, next_id), &next, liveness)?;
        }
        Ok(table)
    }

    /// `get` over the chain of tables from `table` (the caller holds a pin).
    fn get_from(
        &self,
        mut table: RawMap<T::Slots, Sh>,
        hash: u64,
        key: &[u64],
        out: &mut [u64],
        liveness: &impl Liveness,
    ) -> Result<bool> {
        for _ in 0..MAX_TABLES {
            match table.get_step(hash, key, out)? {
                Step::Done(true) => return Ok(true),
                Step::Done(false) => match self.next_of(&table)? {
                    None => return Ok(false),
                    Some((_, next)) => table = next,
                },
                Step::Moved => table = self.moved_on(hash, &table, liveness)?,
            }
        }
        Err(too_many_tables())
    }

    /// The table after `table`, once the probe range of `hash` is migrated into it.
    #[cold]
    fn moved_on(
        &self,
        hash: u64,
        table: &RawMap<T::Slots, Sh>,
        liveness: &impl Liveness,
    ) -> Result<RawMap<T::Slots, Sh>> {
        let (_, next) = self.next_of(table)?.ok_or_else(no_next)?;
        table.migrate_key(hash, &next, liveness)?;
        Ok(next)
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    /// As [`Self::get`].
    #[inline]
    pub fn contains(&self, key: &[u64], liveness: &impl Liveness) -> Result<bool> {
        let hash = self.hash(key);
        match self.contains_first(hash, key) {
            Some(found) => Ok(found),
            None => self.contains_after_first(hash, key, liveness),
        }
    }

    /// [`Self::contains`] after its first look, as [`Self::get_after_first`].
    ///
    /// # Errors
    /// As [`Self::get`].
    #[inline]
    pub(crate) fn contains_after_first(
        &self,
        hash: u64,
        key: &[u64],
        liveness: &impl Liveness,
    ) -> Result<bool> {
        match self.contains_fast(hash, key) {
            Some(found) => Ok(found),
            None => self.contains_in_chain(hash, key, liveness),
        }
    }

    /// `contains`'s fast path, as `get_fast` (no write: a pending copy sends the lookup
    /// to the chain).
    #[inline]
    pub(crate) fn contains_fast(&self, hash: u64, key: &[u64]) -> Option<bool> {
        self.unpinned(|table| table.lookup_here(hash, key, None).ok().flatten())
    }

    /// `contains`'s first look, as [`Self::get_first`].
    #[inline]
    pub(crate) fn contains_first(&self, hash: u64, key: &[u64]) -> Option<bool> {
        self.unpinned(|table| table.lookup_first(hash, key, None))
    }

    /// `contains` over the chain of tables, from the root, pinned (see `get_in_chain`).
    #[cold]
    #[inline(never)]
    pub(crate) fn contains_in_chain(
        &self,
        hash: u64,
        key: &[u64],
        liveness: &impl Liveness,
    ) -> Result<bool> {
        let _pin = self.tables.pin()?;
        let mut table = self.root_helped(liveness)?;
        for _ in 0..MAX_TABLES {
            if table.contains_step(hash, key)? {
                return Ok(true);
            }
            match self.next_of(&table)? {
                None => return Ok(false),
                Some((_, next)) => table = next,
            }
        }
        Err(too_many_tables())
    }

    /// Inserts `key` with `value` (see [`RawMap::insert`]), growing the map when it runs
    /// out of room.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the region has no room for a larger table;
    /// [`Error::Full`] at the largest table; [`Error::Contended`] on a hostile table.
    pub fn insert(
        &self,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> Result<bool> {
        let hash = self.hash(key);
        // A map this handle saw grow first. `None` there without a guess goes on to the
        // first table's look below; with one, that look finds the root past the first
        // table (for good) and sends the insert the whole way.
        if let Some(done) = self.insert_pinned(hash, key, value, replace, old, false, liveness) {
            return done;
        }
        let absent = match self.insert_first(hash, key, value, replace, old, liveness) {
            First::Done(done) => return done,
            First::Absent => true,
            First::Walk => false,
        };
        self.insert_after_first(hash, key, value, replace, old, absent, liveness)
            .map_err(|error| *error)
    }

    /// `insert`'s first look, in straight-line code ([`RawMap::insert_first`]), while the
    /// first table is the only one (never freed: no pin; a table being migrated is passed
    /// the way below, which helps the migration); [`First::Absent`] and [`First::Walk`]
    /// send the caller to [`Self::insert_after_first`]. A map this handle saw grow is
    /// written through [`Self::insert_pinned`].
    #[allow(clippy::inline_always)] // Always: as `update_first`.
    #[inline(always)]
    pub(crate) fn insert_first(
        &self,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> First<Result<bool>> {
        match self.only_first() {
            Some(table) => table.insert_first(hash, key, value, replace, old, liveness),
            None => First::Walk,
        }
    }

    /// [`Self::insert`] on a map this handle saw grow, under one pin: on the table the
    /// handle last found at the root, while the root still names it and it has no next
    /// table (so it is the only table in use, the one `on_newest` would find, without
    /// looking the root's table up and validating it again), its first look and then its
    /// walk. `None` (the root moved, a migration, no room) sends the caller the whole way
    /// ([`Self::insert_after_first`]); `absent` as there.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn insert_pinned(
        &self,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        absent: bool,
        liveness: &impl Liveness,
    ) -> Option<Result<bool>> {
        self.tables.guess()?;
        let pin = match self.tables.pin() {
            Ok(pin) => pin,
            Err(error) => return Some(Err(error)),
        };
        let absent =
            match self.insert_on_guess(&pin, hash, key, value, replace, old, absent, liveness)? {
                First::Done(done) => return Some(done),
                First::Absent => true,
                First::Walk => false,
            };
        self.insert_walked_on_guess(&pin, hash, key, value, replace, old, absent, liveness)
            .map(|done| done.map_err(|error| *error))
    }

    /// The table lookups start at, if it may be written under the pin `_pin` (taken by
    /// the caller from [`Tables::pin`], or its equal): a table after the first (the map
    /// grew), the root still naming it after the pin (module docs: a retirement waits for
    /// the pin).
    #[allow(clippy::inline_always)] // Always: part of every pinned write's first look.
    #[inline(always)]
    fn pinned_guess(&self, _pin: &T::Pin) -> Option<RawMap<T::Slots, Sh>> {
        let (guess, root) = self.tables.guess()?;
        // SeqCst: after the pin's SeqCst fence (as in `pinned_at`): the guessed table is
        // one a retirement waits for, or this load sees the root moved.
        (self.tables.root().load(Ordering::SeqCst) == root).then(|| self.raw(guess))
    }

    /// [`Self::pinned_guess`] if it has no table after it: the only table in use, the one
    /// `on_newest` would find.
    #[allow(clippy::inline_always)] // Always: as `pinned_guess`.
    #[inline(always)]
    fn pinned_only(&self, pin: &T::Pin) -> Option<RawMap<T::Slots, Sh>> {
        let table = self.pinned_guess(pin)?;
        // Acquire: as in `next_of`.
        links_none(table.header(NEXT).load(Ordering::Acquire)).then_some(table)
    }

    /// [`Self::insert_pinned`]'s first look, under a pin the caller took (a handle pins
    /// through its region, so that no call out of line needs this map's address, which
    /// then stays in registers; measured with `map_ops`): `None` sends the caller the
    /// whole way ([`Self::insert_after_first`]), [`First::Absent`] and [`First::Walk`]
    /// to [`Self::insert_walked_on_guess`] under the same pin.
    #[allow(clippy::too_many_arguments, clippy::inline_always)]
    // Always: the straight-line path of a handle's insert on a map that grew (see
    // `HashMap::insert_grown`).
    #[inline(always)]
    pub(crate) fn insert_on_guess(
        &self,
        pin: &T::Pin,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        absent: bool,
        liveness: &impl Liveness,
    ) -> Option<First<Result<bool>>> {
        let table = self.pinned_only(pin)?;
        if absent {
            return Some(First::Absent);
        }
        Some(table.insert_first(hash, key, value, replace, old, liveness))
    }

    /// The walk of [`Self::insert_pinned`] after its first look, under the caller's pin
    /// (as `insert_on_guess`): `None` sends the caller the whole way.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn insert_walked_on_guess(
        &self,
        pin: &T::Pin,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        absent: bool,
        liveness: &impl Liveness,
    ) -> Option<Boxed<bool>> {
        let table = self.pinned_only(pin)?;
        let crowded = || 4 * table.len() >= 3 * table.capacity();
        match table.insert_step(
            hash, key, value, replace, old, GROW_PROBE, crowded, absent, liveness,
        ) {
            Ok(Step::Done(had)) => Some(Ok(had)),
            // Migrating, or out of room: the whole way follows or grows.
            Ok(Step::Moved) => None,
            Err(error) if matches!(*error, Error::Full { .. }) => None,
            Err(error) => Some(Err(error)),
        }
    }

    /// [`Self::insert`] after its first look ([`Self::insert_first`]) or its pinned way
    /// ([`Self::insert_pinned`]) did not answer: over the chain of tables, from the
    /// newest. `absent`: the first look found the key absent (see [`First::Absent`]).
    ///
    /// # Errors
    /// As [`Self::insert`], boxed ([`Boxed`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert_after_first(
        &self,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        mut absent: bool,
        liveness: &impl Liveness,
    ) -> Boxed<bool> {
        for _ in 0..MAX_RETRIES {
            let absent = std::mem::take(&mut absent);
            // `on_newest` spelled out: the never-grown map's step in this function's own
            // frame (through the closure, its answer went through memory: 17 instructions
            // more per remove+insert, measured with `benches/examples/map_ops.rs`).
            let step =
                match self.only_first() {
                    Some(table) => self
                        .insert_or_grow(&table, hash, key, value, replace, old, absent, liveness),
                    None => self.on_newest_pinned(hash, liveness, |table| {
                        Ok(self.insert_or_grow(
                            table, hash, key, value, replace, old, absent, liveness,
                        ))
                    })?,
                }?;
            if let Step::Done(had) = step {
                return Ok(had);
            }
        }
        Err(Box::new(Error::Contended("hash map insert")))
    }

    /// One insert step in `table`, the newest table: grows it when it is full (then the
    /// step is `Moved`, and the caller goes on in the next table).
    #[allow(clippy::too_many_arguments, clippy::inline_always)]
    // Always: the fast path of `insert_after_first` (see there).
    #[inline(always)]
    fn insert_or_grow(
        &self,
        table: &RawMap<T::Slots, Sh>,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        absent: bool,
        liveness: &impl Liveness,
    ) -> Boxed<Step<bool>> {
        // A claim that has passed GROW_PROBE taken slots reads the load once: at 3/4 the
        // table grows, below it the claim walks on (one walk either way).
        let crowded = || 4 * table.len() >= 3 * table.capacity();
        match table.insert_step(
            hash, key, value, replace, old, GROW_PROBE, crowded, absent, liveness,
        ) {
            Err(error) if matches!(*error, Error::Full { .. }) => {
                self.grow_and_insert(table, hash, key, value, replace, old, liveness)
            }
            other => other,
        }
    }

    /// `insert_or_grow` after its table had no room: grows it, or, while another process
    /// makes the next table, inserts into this one if it still has room within the probe
    /// limit.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    fn grow_and_insert(
        &self,
        table: &RawMap<T::Slots, Sh>,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> Boxed<Step<bool>> {
        match self.grow(table, liveness, false)? {
            Growth::Linked => Ok(Step::Moved),
            // Another process makes the next table: meanwhile this one may still have
            // room up to the probe limit.
            Growth::Claimed => match table.insert_step(
                hash,
                key,
                value,
                replace,
                old,
                GROW_PROBE,
                || false,
                false,
                liveness,
            ) {
                Err(error) if matches!(*error, Error::Full { .. }) => {
                    self.grow(table, liveness, true)?;
                    Ok(Step::Moved)
                }
                other => other,
            },
        }
    }

    /// Runs `f(current, new)` on the value of `key` (see [`RawMap::update`]).
    ///
    /// # Errors
    /// As [`RawMap::update`].
    #[inline]
    pub fn update(
        &self,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        mut f: impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<Updated> {
        let hash = self.hash(key);
        if let Some(updated) = self.update_first(hash, key, old, liveness, &mut f) {
            return updated;
        }
        self.update_after_first(hash, key, old, liveness, f)
    }

    /// [`Self::update`] after its first look ([`Self::update_first`]) did not answer.
    ///
    /// # Errors
    /// As [`Self::update`].
    #[inline]
    pub(crate) fn update_after_first(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        mut f: impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<Updated> {
        // The fast path, as in `get`: a member not frozen is the key's only entry, and an
        // update of it is the update, whichever table it lies in. A table after the first
        // is written pinned and while the root still names it (module docs).
        if self.tables.guess().is_none() {
            let table = self.raw(self.tables.first());
            if let Some(updated) = Self::update_walked(&table, hash, key, old, liveness, &mut f) {
                return updated;
            }
        } else {
            let pin = self.tables.pin()?;
            // A map that grew: `update_first` made no look; make it here, pinned, on the
            // guessed table (measured: a `fetch_add` on a grown map took 571 instructions
            // without it, 220 on one that never grew).
            match self.update_on_guess(&pin, hash, key, old, liveness, &mut f) {
                Some(Some(updated)) => return updated,
                Some(None) => {
                    if let Some(updated) =
                        self.update_walked_on_guess(&pin, hash, key, old, liveness, &mut f)
                    {
                        return updated;
                    }
                }
                None => {}
            }
        }
        self.update_in_chain(hash, key, old, liveness, f)
    }

    /// [`Self::update`]'s first look on a map that grew, under a pin the caller took (as
    /// in [`Self::insert_on_guess`]).
    #[allow(clippy::inline_always)] // Always: as `insert_on_guess`.
    #[inline(always)]
    pub(crate) fn update_on_guess(
        &self,
        pin: &T::Pin,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Guessed<Result<Updated>> {
        let table = self.pinned_guess(pin)?;
        Some(table.update_first(hash, key, old, liveness, f))
    }

    /// The walk of an update in the table lookups start at, under the caller's pin (as
    /// `update_on_guess`): `None` sends the caller the whole way.
    #[inline]
    pub(crate) fn update_walked_on_guess(
        &self,
        pin: &T::Pin,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Option<Result<Updated>> {
        let table = self.pinned_guess(pin)?;
        Self::update_walked(&table, hash, key, old, liveness, f)
    }

    /// An update's walk of `table` (the first, or a pinned guess): its answer, or `None`
    /// when the whole way must follow (a frozen member; absent here, but perhaps in a
    /// later table).
    #[allow(clippy::inline_always)] // Always: the body of the walks above.
    #[inline(always)]
    fn update_walked(
        table: &RawMap<T::Slots, Sh>,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Option<Result<Updated>> {
        match table.update_step(hash, key, old, liveness, f) {
            Err(error) => Some(Err(error)),
            Ok(Step::Done(Updated::Absent)) if !table.settled_here(hash) => None,
            Ok(Step::Done(updated)) => Some(Ok(updated)),
            Ok(Step::Moved) => None,
        }
    }

    /// `update`'s first look, in straight-line code ([`RawMap::update_first`]) on a map
    /// this handle never saw grow (its first table, never freed: no pin; a member not
    /// frozen is the key's only entry, as in `update_after_first`); `None` sends the caller
    /// to [`Self::update_after_first`].
    // Always: the handles' straight-line path (an out-of-line call made the compiler
    // spill the caller's state around it: measured, ~60 more instructions an update).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn update_first(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Option<Result<Updated>> {
        if self.tables.guess().is_some() {
            return None; // a later table: `update` pins
        }
        self.raw(self.tables.first())
            .update_first(hash, key, old, liveness, f)
    }

    /// `update` over the chain of tables, from the newest (out of line: the fast path
    /// stays small).
    #[cold]
    #[inline(never)]
    pub(crate) fn update_in_chain(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        mut f: impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<Updated> {
        for _ in 0..MAX_RETRIES {
            let step = self.on_newest(hash, liveness, |table| {
                table.update_step(hash, key, old, liveness, &mut f)
            })?;
            if let Step::Done(updated) = step {
                return Ok(updated);
            }
        }
        Err(Error::Contended("hash map update"))
    }

    /// Removes `key`, copying its value into `old`; whether it was present.
    ///
    /// # Errors
    /// As [`RawMap::remove`].
    #[inline]
    pub fn remove(&self, key: &[u64], old: &mut [u64], liveness: &impl Liveness) -> Result<bool> {
        self.remove_boxed(key, old, liveness)
            .map_err(|error| *error)
    }

    /// [`Self::remove`], its error boxed ([`Boxed`]: its answer in registers).
    #[allow(clippy::inline_always)]
    // Always: in the handle's `remove`, which builds this map for the call (as a call, in
    // memory; see `RawMap::insert_step`).
    #[inline(always)]
    pub(crate) fn remove_boxed(
        &self,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> Boxed<bool> {
        let hash = self.hash(key);
        // The fast path, as in `update`.
        let (guess, _pin) = match self.tables.guess() {
            None => (self.raw(self.tables.first()), None),
            Some((guess, root)) => match self.pinned_at(root)? {
                Some(pin) => (self.raw(guess), Some(pin)),
                None => return self.remove_in_chain(hash, key, old, liveness),
            },
        };
        match guess.remove_step(hash, key, old, liveness)? {
            Step::Done(false) if !guess.settled_here(hash) => {}
            Step::Done(removed) => return Ok(removed),
            Step::Moved => {}
        }
        self.remove_in_chain(hash, key, old, liveness)
    }

    /// `remove` over the chain of tables, from the newest (out of line, as
    /// `update_in_chain`).
    #[cold]
    #[inline(never)]
    fn remove_in_chain(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> Boxed<bool> {
        for _ in 0..MAX_RETRIES {
            let step = self.on_newest(hash, liveness, |table| {
                table.remove_step(hash, key, old, liveness)
            })?;
            if let Step::Done(removed) = step {
                return Ok(removed);
            }
        }
        Err(Box::new(Error::Contended("hash map remove")))
    }

    /// Links a table of twice the capacity after `table`, unless one is linked already. A
    /// table that still receives a migration finishes it first (capacities grow along
    /// the chain: the root is `table` when it has its capacity). While another live
    /// process is making the next table ([`GROWING`]), returns [`Growth::Claimed`] at
    /// once, or (`wait`) waits for its link up to [`GROW_PATIENCE`] and then takes the
    /// claim over; a dead claimant's claim is taken over at once.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the region has no room for the table (the claim is
    /// given up, so that another process may try); [`Error::Full`] past
    /// [`MAX_CAPACITY`]; [`Error::Contended`] if the `NEXT` word keeps changing.
    #[cold]
    fn grow(
        &self,
        table: &RawMap<T::Slots, Sh>,
        liveness: &impl Liveness,
        wait: bool,
    ) -> Result<Growth> {
        // `table` may be the first one, reached unpinned: the root is read pinned.
        let pin = self.tables.pin()?;
        if self.root()?.1.capacity() != table.capacity() {
            self.finish(&pin, liveness)?;
            return Ok(Growth::Linked);
        }
        let capacity = table.capacity() * 2;
        if capacity > MAX_CAPACITY {
            return Err(Error::Full {
                capacity: table.capacity(),
            });
        }
        let next = table.header(NEXT);
        let mine = GROWING | u64::from(liveness.me().bits());
        let backoff = Backoff::new();
        let mut patience = Patience::new();
        // The claim the patience runs for.
        let mut waited_on = 0;
        let mut contended = 0;
        // Acquire: as in `next_of`.
        let mut seen = next.load(Ordering::Acquire);
        loop {
            if !links_none(seen) {
                return Ok(Growth::Linked);
            }
            if wait && seen != waited_on {
                // A claim this waiter has not waited for yet: its patience starts afresh.
                (waited_on, patience) = (seen, Patience::new());
            }
            if seen != 0 && (!wait || patience.lasts()) {
                // A claim that names no owner (a hostile word) is as good as a dead one's;
                // our own is another thread's of this process, alive.
                let claimant = claim_owner_bits(seen).and_then(OwnerId::from_bits);
                let alive = seen == mine
                    || claimant.is_some_and(|owner| {
                        liveness.may_be_alive(owner)
                            && (!wait || !patience.asks() || liveness.is_alive(owner))
                    });
                if alive {
                    if !wait {
                        return Ok(Growth::Claimed);
                    }
                    backoff.snooze();
                    // Acquire: as in `next_of`.
                    seen = next.load(Ordering::Acquire);
                    continue;
                }
            }
            // Ours to claim: no claim, or a dead or frozen claimant's (ours too, another
            // thread's of this process, once the patience has run out). Relaxed on
            // success: a claim publishes nothing (the link does); Acquire on failure, as in
            // `next_of`.
            match next.compare_exchange(seen, mine, Ordering::Relaxed, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
            contended += 1;
            if contended > MAX_RETRIES {
                return Err(Error::Contended("hash map growth"));
            }
        }
        fail::fail_point!("hash_map::grow_after_claim");
        let records = table.made_records();
        // Blocks a dead maker took for this growth and never linked.
        self.tables.give_back_made(capacity, records, liveness);
        fail::fail_point!("hash_map::grow_before_make");
        let made = match self.tables.make(capacity, records, liveness.me()) {
            Ok(made) => made,
            Err(error) => {
                clear_made(records, liveness.me());
                // Give the claim up (unless it was taken over), so that another process
                // (with more room freed by then) may try. Relaxed: it publishes nothing;
                // Acquire on failure, as in `next_of`.
                return match next.compare_exchange(mine, 0, Ordering::Relaxed, Ordering::Acquire) {
                    Err(now) if !links_none(now) => Ok(Growth::Linked),
                    // Taken over: another process makes the table.
                    Err(now) if now != 0 => Ok(Growth::Claimed),
                    _ => Err(error),
                };
            }
        };
        fail::fail_point!("hash_map::grow_before_link");
        // Before the link: a record never names a linked block (see `give_back_made`).
        clear_made(records, liveness.me());
        // AcqRel: Release publishes the zeroed table to whoever follows the link; Acquire
        // on failure, as in `next_of`. A failure: our claim was taken over (we were judged
        // frozen), and the taker links a table of its own.
        if next
            .compare_exchange(mine, made, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            fail::fail_point!("hash_map::grow_after_link");
        } else {
            self.tables.discard(made, capacity);
        }
        Ok(Growth::Linked)
    }

    /// Migrates one chunk of `table` (root word `root`) into `next` (root word
    /// `next_root`); whether the whole table is migrated (and the root moved past it).
    fn help(
        &self,
        root: u64,
        table: &RawMap<T::Slots, Sh>,
        next_root: u64,
        next: &RawMap<T::Slots, Sh>,
        liveness: &impl Liveness,
    ) -> Result<bool> {
        let chunks = chunks(table.capacity());
        // Relaxed: a ticket; the bitmap, not the cursor, records what is done.
        let ticket = table.header(CURSOR).fetch_add(1, Ordering::Relaxed);
        let chunk = if ticket < chunks {
            Some(ticket)
        } else {
            unfinished_chunk(table, chunks)
        };
        if let Some(chunk) = chunk {
            table.migrate_chunk(chunk, next, liveness)?;
            fail::fail_point!("hash_map::migrate_before_chunk_done");
            // Release: the chunk's slots are migrated before its bit shows.
            table
                .header(BITMAP + chunk / 64)
                .fetch_or(1 << (chunk % 64), Ordering::Release);
        }
        if ticket + 1 < chunks || unfinished_chunk(table, chunks).is_some() {
            return Ok(false);
        }
        // SeqCst: the operations that start at the new root see the migrated slots (the
        // bitmap's Release, read by our Acquire loads), and a pinned writer's check of
        // its guess (`pinned_at`) is ordered with the move. A failure: the root moved
        // already, and its mover retires the table.
        let moved = self
            .tables
            .root()
            .compare_exchange(root, next_root, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        if moved && root != 0 {
            fail::fail_point!("hash_map::migrate_before_retire");
            self.tables.retire(root_id(root), table.capacity());
        }
        if moved {
            // Nobody claims this table's growth again: what dead makers recorded in it is
            // given back now or never. After the retirement (whose window a death leaks
            // the table in stays short): our pin keeps the retired table's header.
            self.give_back_made_in(table, liveness);
        }
        Ok(true)
    }

    /// Helps every migration until the map has one table: that table and its root word.
    /// `_pin` keeps the table from being freed while the caller uses it.
    ///
    /// # Errors
    /// [`Error::Full`] if a next table has no room for a member near its home (a hostile
    /// table); [`Error::Contended`] if a slot keeps changing.
    pub fn finish(
        &self,
        _pin: &T::Pin,
        liveness: &impl Liveness,
    ) -> Result<(u64, RawMap<T::Slots, Sh>)> {
        for _ in 0..MAX_TABLES {
            let (root, table) = self.root()?;
            let Some((next_id, next)) = self.next_of(&table)? else {
                return Ok((root, table));
            };
            let next_root = root_after(root, next_id);
            let mut finished = false;
            for _ in 0..2 * chunks(table.capacity()) + 2 {
                if self.help(root, &table, next_root, &next, liveness)? {
                    finished = true;
                    break;
                }
            }
            if !finished {
                return Err(Error::Contended("hash map migration"));
            }
        }
        Err(too_many_tables())
    }

    /// A pin (see [`Tables::pin`]) for [`Self::chain`], [`Self::newest`] and
    /// [`Self::finish`].
    ///
    /// # Errors
    /// As [`Tables::pin`].
    pub fn pin(&self) -> Result<T::Pin> {
        self.tables.pin()
    }

    /// Every table in use, oldest first; `_pin` keeps them from being freed while the
    /// caller reads them.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a chain that names no table.
    pub fn chain(&self, _pin: &T::Pin) -> Result<Vec<RawMap<T::Slots, Sh>>> {
        let (_, mut table) = self.root()?;
        let mut tables = Vec::new();
        for _ in 0..MAX_TABLES {
            let next = self.next_of(&table)?;
            tables.push(table);
            match next {
                None => return Ok(tables),
                Some((_, next)) => table = next,
            }
        }
        Err(too_many_tables())
    }

    /// The newest table (where inserts go), as [`Self::chain`].
    ///
    /// # Errors
    /// As [`Self::chain`].
    pub fn newest(&self, _pin: &T::Pin) -> Result<RawMap<T::Slots, Sh>> {
        let (_, mut table) = self.root()?;
        for _ in 0..MAX_TABLES {
            match self.next_of(&table)? {
                None => return Ok(table),
                Some((_, next)) => table = next,
            }
        }
        Err(too_many_tables())
    }

    /// Gives back the blocks a dead maker took for the root table's next one and never
    /// linked ([`Tables::give_back_made`]): what a handle does as it opens the map, so
    /// that a map that grows no more (its writer killed while making the next table,
    /// restarted, and the table never that full again) does not keep them. Only the root
    /// grows, so the root table's records are the ones a maker can leave; they are given
    /// back as at a claim of the growth (a live maker's are left alone).
    ///
    /// # Errors
    /// A pin's error, or [`Error::Corrupt`] for a root word that names no table.
    pub fn give_back_made(&self, liveness: &impl Liveness) -> Result<()> {
        // Acquire: as in `root`.
        if self.tables.root().load(Ordering::Acquire) == 0 {
            // The first table is never freed: no pin (so a map that never grew is opened
            // without one). Should the root move on meanwhile, its records are still the
            // ones to look at or empty.
            self.give_back_made_in(&self.raw(self.tables.first()), liveness);
            return Ok(());
        }
        let _pin = self.tables.pin()?;
        self.give_back_made_in(&self.root()?.1, liveness);
        Ok(())
    }

    /// Gives back what dead makers recorded in `table` for its next table (of twice its
    /// capacity): [`Tables::give_back_made`] on `table`'s records. The caller keeps
    /// `table` from being freed meanwhile.
    fn give_back_made_in(&self, table: &RawMap<T::Slots, Sh>, liveness: &impl Liveness) {
        self.tables
            .give_back_made(table.capacity() * 2, table.made_records(), liveness);
    }

    /// Slots of the newest table: how many entries fit before the map grows again.
    pub fn capacity(&self) -> u64 {
        self.of_newest(RawMap::capacity)
    }

    /// Entries, from the counters (see [`RawMap::len`]).
    pub fn len(&self) -> u64 {
        self.of_newest(RawMap::len)
    }

    /// `f` of the newest table: unpinned on a map that never grew (its first table is
    /// never freed), else pinned (0 when this handle cannot pin, or on a corrupt chain).
    fn of_newest(&self, f: impl FnOnce(&RawMap<T::Slots, Sh>) -> u64) -> u64 {
        if let Some(first) = self.only_first() {
            return f(&first);
        }
        self.pin()
            .and_then(|pin| self.newest(&pin))
            .map_or(0, |table| f(&table))
    }

    /// Whether the counters say the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every member, one by one (not atomic as a whole); finishes a migration
    /// first, so that no member waits unpublished behind the walk.
    ///
    /// # Errors
    /// As [`Self::finish`].
    pub fn clear(&self, liveness: &impl Liveness) -> Result<()> {
        let pin = self.pin()?;
        for _ in 0..MAX_TABLES {
            let (_, table) = self.finish(&pin, liveness)?;
            table.clear(liveness);
            if self.next_of(&table)?.is_none() {
                return Ok(());
            }
        }
        Err(too_many_tables())
    }

    /// Recounts the members (see [`RawMap::recount`]) once the map has one table.
    ///
    /// # Errors
    /// As [`Self::finish`].
    pub fn recount(&self, liveness: &impl Liveness) -> Result<u64> {
        let pin = self.pin()?;
        Ok(self.finish(&pin, liveness)?.1.recount())
    }

    /// An iteration from the oldest table in use. It holds a pin until dropped: tables
    /// retired meanwhile (and everything else retired in the region) wait for it.
    ///
    /// # Errors
    /// As [`Tables::pin`].
    pub fn walk(&self) -> Result<Walk<T::Pin>> {
        let pin = self.pin()?;
        Ok(Walk {
            // Acquire: as in `root`.
            table: root_id(self.tables.root().load(Ordering::Acquire)),
            slot: 0,
            first: true,
            done: false,
            _pin: pin,
        })
    }

    /// The next entry of `walk` into `key` and `value`; false at the end. Weakly
    /// consistent, also across growth: an entry present for the whole walk is seen exactly
    /// once (in the first table, a migrated entry is read from wherever its copy went; in
    /// later tables, entries that arrived by migration are passed over, having been seen
    /// in the table they came from), and none is seen torn.
    ///
    /// # Errors
    /// As [`RawMap::read_entry`]; the walk goes on with the next slot.
    pub fn next_entry(
        &self,
        walk: &mut Walk<T::Pin>,
        key: &mut [u64],
        value: &mut [u64],
    ) -> Result<bool> {
        while !walk.done {
            let table = self.raw(self.tables.table(walk.table)?);
            if walk.slot >= table.capacity() {
                match self.next_of(&table)? {
                    None => walk.done = true,
                    Some((id, _)) => {
                        (walk.table, walk.slot, walk.first) = (id, 0, false);
                    }
                }
                continue;
            }
            let slot = walk.slot;
            walk.slot += 1;
            match table.read_for_walk(slot, key, value, walk.first)? {
                WalkRead::Entry => return Ok(true),
                WalkRead::Skip => {}
                WalkRead::Committed(dest) => {
                    if self.read_moved(&table, dest, key, value)? {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Reads the copy `dest` (as a commit in `table` names it) in the next table, following
    /// it on through later migrations; false if it was removed meanwhile.
    fn read_moved(
        &self,
        table: &RawMap<T::Slots, Sh>,
        mut dest: u64,
        key: &mut [u64],
        value: &mut [u64],
    ) -> Result<bool> {
        let mut table = self.next_of(table)?.ok_or_else(no_next)?.1;
        for _ in 0..MAX_TABLES {
            match table.read_copy(dest, key, value)? {
                CopyRead::Entry => return Ok(true),
                CopyRead::Gone => return Ok(false),
                CopyRead::Committed(further) => {
                    dest = further;
                    table = self.next_of(&table)?.ok_or_else(no_next)?.1;
                }
            }
        }
        Err(too_many_tables())
    }
}

/// The first chunk of `table` whose bit is clear.
fn unfinished_chunk<S: Slots, Sh: Shape>(table: &RawMap<S, Sh>, chunks: u64) -> Option<u64> {
    (0..chunks.div_ceil(64)).find_map(|word| {
        // Acquire: pairs with the Release of the chunks' bits (their slots migrated).
        let bits = table.header(BITMAP + word).load(Ordering::Acquire);
        let valid = if (word + 1) * 64 <= chunks {
            u64::MAX
        } else {
            (1 << (chunks % 64)) - 1
        };
        let missing = !bits & valid;
        (missing != 0).then(|| word * 64 + u64::from(missing.trailing_zeros()))
    })
}

/// What an iteration read in one slot.
pub(crate) enum WalkRead {
    /// An entry, read into the buffers.
    Entry,
    /// Nothing to report here.
    Skip,
    /// A member committed to the next table: read it there (its copy).
    Committed(u64),
}

/// What the copy a commit names held.
pub(crate) enum CopyRead {
    Entry,
    /// Removed since (or never published and given up).
    Gone,
    /// Migrated on, to this copy in the table after.
    Committed(u64),
}

impl<S: Slots, Sh: Shape> RawMap<S, Sh> {
    /// A lookup of `key` (with `hash`) in this table alone, when it is the first table or
    /// one the root passed (see [`Tables::guess`]): the map's answer, if this table gives
    /// it (see `settled_here`); `None` sends the caller to the chain.
    ///
    /// # Errors
    /// As [`RawMap::get`].
    #[inline]
    pub(crate) fn lookup_here(
        &self,
        hash: u64,
        key: &[u64],
        out: Option<&mut [u64]>,
    ) -> Result<Option<bool>> {
        // One walk, and no write (a pending copy of the key sends the caller to the chain,
        // whose lookup settles it).
        Ok(self.answer_here(hash, self.find_once(hash, key, out)?))
    }

    /// [`Self::lookup_here`] when the walk's first slot answers ([`RawMap::find_first`]):
    /// `None` also when it does not (the caller walks).
    // Always: the first look of every lookup, compiled for its key and value sizes.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn lookup_first(
        &self,
        hash: u64,
        key: &[u64],
        out: Option<&mut [u64]>,
    ) -> Option<bool> {
        self.answer_here(hash, self.find_first(hash, key, out)?)
    }

    /// The map's answer from what a walk of this table found, if this table gives it: a
    /// member not frozen, or absence once `settled_here`.
    #[inline]
    fn answer_here(&self, hash: u64, found: Found) -> Option<bool> {
        match found {
            Found::Member(_, seen) if !frozen(seen[0]) => Some(true),
            Found::Absent if self.settled_here(hash) => Some(false),
            _ => None,
        }
    }

    /// Whether a lookup that found no member of a key with `hash` in this table may answer
    /// "absent" for the whole map: the key's home slot is not frozen, read after the walk.
    ///
    /// A key's operations go on in a later table only once its probe range here is
    /// migrated, and that freezes its home slot first (`migrate.rs`). So while the home is
    /// not frozen no later table has held the key, and the walk's answer for this table is
    /// the map's. (An older table than this one is never in use: lookups start at the
    /// root or at a table the root has passed, whose slots are all frozen.)
    ///
    /// Cheaper first: a table with no next one is the newest, so it is the root (lookups
    /// never start past the root), the only table in use.
    #[inline]
    pub(crate) fn settled_here(&self, hash: u64) -> bool {
        // Acquire: as in `next_of` (a line every lookup reads: it stays cached, where the
        // home slot's state would cost a miss of a lookup that read only hint bytes).
        links_none(self.header(NEXT).load(Ordering::Acquire)) || self.home_unfrozen(hash)
    }

    // Inline: a cold call here would take the table's address on every lookup's path.
    #[inline]
    fn home_unfrozen(&self, hash: u64) -> bool {
        // SeqCst: after the walk's loads (SeqCst hint and state loads).
        !frozen(self.pair(hash).load_first(Ordering::SeqCst))
    }

    /// Reads `slot` for an iteration (`first`: in the first table it walks).
    pub(crate) fn read_for_walk(
        &self,
        slot: u64,
        key: &mut [u64],
        value: &mut [u64],
        first: bool,
    ) -> Result<WalkRead> {
        for _ in 0..MAX_RETRIES {
            // SeqCst: as in `read_entry`.
            let seen = self.pair(slot).load(Ordering::SeqCst);
            match kind(seen[0]) {
                MEMBER if !first && seen[0] & ARRIVED != 0 => return Ok(WalkRead::Skip),
                MEMBER if seen[0] & COMMITTED != 0 => return Ok(WalkRead::Committed(seen[1])),
                MEMBER => {
                    if self.read_slot(slot, seen, KeyAccess::Copy(key), Some(value)) == Read::Match
                    {
                        return Ok(WalkRead::Entry);
                    }
                }
                INSERTING if !frozen(seen[0]) => {
                    // Settled as `read_entry` does, then read again.
                    if self.read_entry(slot, key, value)? {
                        return Ok(WalkRead::Entry);
                    }
                }
                _ => return Ok(WalkRead::Skip),
            }
        }
        Err(Error::Contended("hash map read"))
    }

    /// Reads the copy `dest` names (slot and version) in this table.
    fn read_copy(&self, dest: u64, key: &mut [u64], value: &mut [u64]) -> Result<CopyRead> {
        let slot = self.named_slot(dest)?;
        for _ in 0..MAX_RETRIES {
            // SeqCst: as in `read_entry`.
            let seen = self.pair(slot).load(Ordering::SeqCst);
            if !names(dest, seen[0]) {
                return Ok(CopyRead::Gone);
            }
            match kind(seen[0]) {
                MEMBER if seen[0] & COMMITTED != 0 => return Ok(CopyRead::Committed(seen[1])),
                MEMBER => {
                    if self.read_slot(slot, seen, KeyAccess::Copy(key), Some(value)) == Read::Match
                    {
                        return Ok(CopyRead::Entry);
                    }
                }
                MOVING if !frozen(seen[0]) => {
                    // Unpublished: the key and value its mover wrote (copy 0, or the
                    // staging word), valid if the pair is unchanged after reading them.
                    let data = self.slots.data(slot & self.mask);
                    for (word, cell) in key.iter_mut().zip(&data[..self.key_words()]) {
                        // Relaxed: validated by the pair re-read below.
                        *word = cell.load(Ordering::Relaxed);
                    }
                    let source = if self.wide() {
                        self.copy(slot, 0)
                    } else {
                        std::slice::from_ref(self.staging(slot))
                    };
                    for (word, cell) in value.iter_mut().zip(source) {
                        // Relaxed: as above.
                        *word = cell.load(Ordering::Relaxed);
                    }
                    // Acquire fence: the loads above come before the re-read.
                    fence(Ordering::Acquire);
                    // Relaxed: ordered by the fence.
                    if self.pair(slot).load(Ordering::Relaxed) == seen {
                        return Ok(CopyRead::Entry);
                    }
                }
                _ => return Ok(CopyRead::Gone),
            }
        }
        Err(Error::Contended("hash map read"))
    }
}
