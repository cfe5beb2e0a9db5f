//! A settle whose walk began before a copy of its key was published, and passed a slot
//! where a member of the key appeared meanwhile, must not promote that copy (a replay on the
//! map algorithm as shipped: a table whose hint loads pause one walk while other processes
//! act). Before the fix: two members of one key, and a dead process's value read after the
//! key was removed.
use shmarena::engine::sync::{AtomicPair, AtomicU64, Ordering};
use shmarena::engine::Liveness;
use shmarena::hash_map::{RawMap, Slots};
use shmarena::OwnerId;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Mutex;

const CAP: u64 = 4;
const SEED: u64 = 7;
const INSERTING: u64 = 2;
const BUSY: u64 = 1;

type Hook = Box<dyn FnOnce(&Hooked) + Send>;

struct Hooked {
    pairs: Vec<AtomicPair>,
    data: Vec<Vec<AtomicU64>>,
    counters: Vec<AtomicU64>,
    hints: Vec<AtomicU64>,
    header: Vec<AtomicU64>,
    armed: AtomicBool,
    watch: u64,
    watch_reads: AtomicU32,
    fire_after: u32,
    hook: Mutex<Option<Hook>>,
}

impl Slots for Hooked {
    fn capacity(&self) -> u64 {
        CAP
    }
    fn pair(&self, slot: u64) -> &AtomicPair {
        if self.armed.load(Ordering::SeqCst) && slot == self.watch {
            self.watch_reads.fetch_add(1, Ordering::SeqCst);
        }
        &self.pairs[slot as usize]
    }
    fn data(&self, slot: u64) -> &[AtomicU64] {
        &self.data[slot as usize]
    }
    fn counter(&self, shard: usize) -> &AtomicU64 {
        &self.counters[shard]
    }
    fn hints(&self, word: u64) -> &AtomicU64 {
        if self.armed.load(Ordering::SeqCst)
            && self.watch_reads.load(Ordering::SeqCst) >= self.fire_after
        {
            self.armed.store(false, Ordering::SeqCst);
            let hook = self.hook.lock().unwrap().take().unwrap();
            hook(self); // other processes act while this walk is paused
        }
        &self.hints[word as usize]
    }
    fn header(&self, word: u64) -> &AtomicU64 {
        &self.header[word as usize]
    }
}

struct Who(OwnerId);
const DEAD_ONE: u32 = 9;
impl Liveness for Who {
    fn me(&self) -> OwnerId {
        self.0
    }
    fn is_alive(&self, owner: OwnerId) -> bool {
        owner.slot() != DEAD_ONE
    }
}
fn who(slot: u32) -> Who {
    Who(OwnerId::new(slot, 1))
}

fn raw(t: &Hooked) -> RawMap<&Hooked> {
    RawMap::new(t, 1, 1, SEED)
}

fn hint_of(hash: u64) -> u64 {
    0x80 | (hash >> 57)
}

fn set_hint(t: &Hooked, slot: u64, byte: u64) {
    let cell = &t.hints[(slot / 8) as usize];
    let shift = 8 * (slot % 8);
    let w = cell.load(Ordering::SeqCst);
    cell.store(w & !(0xff << shift) | byte << shift, Ordering::SeqCst);
}

/// Publishes a pending copy of `key` (value `value`) in `slot` as an inserter that then
/// died: claim (version + 1), key and staging value, hint, bound, INSERTING.
fn dead_copy(t: &Hooked, slot: u64, key: u64, value: u64) {
    let r = raw(t);
    let hash = r.hash(&[key]);
    let home = hash & (CAP - 1);
    let owner = u64::from(OwnerId::new(DEAD_ONE, 1).bits());
    let seen = t.pairs[slot as usize].load(Ordering::SeqCst);
    assert!(
        matches!(seen[0] & 7, 0 | 4),
        "slot {slot} not free: {:#x}",
        seen[0]
    );
    let version = (seen[0] >> 27) + 1;
    let bound_bits = seen[0] & (0xfff << 3);
    let busy = BUSY | bound_bits | version << 30;
    t.pairs[slot as usize]
        .compare_exchange(seen, [busy, owner], Ordering::SeqCst, Ordering::SeqCst)
        .unwrap();
    t.data[slot as usize][0].store(key, Ordering::SeqCst);
    t.data[slot as usize][1].store(value, Ordering::SeqCst);
    set_hint(t, slot, hint_of(hash));
    // Raise the home's bound.
    let displacement = (slot + CAP - home) & (CAP - 1);
    loop {
        let h = t.pairs[home as usize].load(Ordering::SeqCst);
        let b = (h[0] >> 3) & 0xfff;
        if b > displacement {
            break;
        }
        let new = [(h[0] & !(0xfff << 3)) | (displacement + 1) << 3, h[1]];
        if t.pairs[home as usize]
            .compare_exchange(h, new, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            break;
        }
    }
    let now = t.pairs[slot as usize].load(Ordering::SeqCst);
    let tag = hash >> 52;
    let inserting = [
        INSERTING | (now[0] & (0xfff << 3)) | tag << 15 | version << 30,
        owner,
    ];
    t.pairs[slot as usize]
        .compare_exchange(now, inserting, Ordering::SeqCst, Ordering::SeqCst)
        .unwrap();
}

fn get(t: &Hooked, key: u64) -> Option<u64> {
    let mut out = [0];
    raw(t).get(&[key], &mut out).unwrap().then_some(out[0])
}

#[test]
fn a_settle_never_promotes_a_copy_published_behind_its_walk() {
    let t = Hooked {
        pairs: (0..CAP).map(|_| AtomicPair::new([0, 0])).collect(),
        data: (0..CAP)
            .map(|_| (0..2).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        counters: (0..16).map(|_| AtomicU64::new(0)).collect(),
        hints: (0..8).map(|_| AtomicU64::new(0)).collect(),
        header: (0..16).map(|_| AtomicU64::new(0)).collect(),
        armed: AtomicBool::new(false),
        watch: 0,
        watch_reads: AtomicU32::new(0),
        fire_after: 3,
        hook: Mutex::new(None),
    };
    let r = raw(&t);
    // K with home 0, Y with home 1 (other hint).
    let k = (1..10_000u64).find(|k| r.hash(&[*k]) % CAP == 0).unwrap();
    let hk = hint_of(r.hash(&[k]));
    let y = (1..10_000u64)
        .find(|y| r.hash(&[*y]) & 3 == 1 && hint_of(r.hash(&[*y])) != hk)
        .unwrap();
    let mut old = [0];
    // Slot 0: K inserted then removed (DELETED, hint K). Slot 1: Y member.
    assert!(!r.insert(&[k], &[1], true, &mut old, &who(1)).unwrap());
    assert!(!r.insert(&[y], &[5], true, &mut old, &who(1)).unwrap());
    assert!(r.remove(&[k], &mut old, &who(1)).unwrap());
    // Slot 2: a pending copy C0 of K (its inserter died before settling).
    dead_copy(&t, 2, k, 100);

    *t.hook.lock().unwrap() = Some(Box::new(move |t: &Hooked| {
        let r = raw(t);
        let mut old = [0];
        // P1 removes K: settles C0 (promotes it), removes it.
        assert!(r.remove(&[k], &mut old, &who(2)).unwrap());
        assert_eq!(old, [100]);
        // P2 removes Y: slot 1 DELETED.
        assert!(r.remove(&[y], &mut old, &who(2)).unwrap());
        // P_R inserts K = 111: claims slot 0, promotes it.
        assert!(!r.insert(&[k], &[111], true, &mut old, &who(3)).unwrap());
        assert_eq!(get(t, k), Some(111));
        // P_C (whose find saw K absent before P_R published, and who claimed slot 1 while
        // slot 0 was BUSY) publishes its copy of K = 222 now, and dies.
        dead_copy(t, 1, k, 222);
    }));
    t.armed.store(true, Ordering::SeqCst);
    // H: a reader of K. Its find meets C0 pending, its settle reads slot 0 (DELETED), then
    // pauses before slot 1 (the hook runs). Before the fix it then promoted the dead copy
    // in slot 1 beside the member in slot 0.
    let seen = get(&t, k);
    assert!(seen.is_none() || seen == Some(111), "H read {seen:?}");
    assert!(t.hook.lock().unwrap().is_none(), "hook did not fire");
    let members = r.census()[0];
    // Remove K once: then a later get should say absent.
    assert!(r.remove(&[k], &mut old, &who(4)).unwrap());
    assert_eq!(old, [111]);
    let after = get(&t, k);
    assert_eq!(members, 1, "two members of one key");
    assert_eq!(
        after, None,
        "the dead process's copy landed after the remove"
    );
}
