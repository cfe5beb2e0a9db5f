//! Owner ids never come back while a dead owner's id may be recorded: a participant slot
//! whose generations run out is retired and swept (every owner field naming it rewritten
//! to `OwnerId::DEAD`) before it is reused. Regions here lower the header's generation
//! limit so that slots run out in a few attaches; the test attaches and detaches until a
//! newcomer holds a dead owner's exact id (the slot and generation it had), which the
//! design without sweeps reached after 2^19 attaches of one slot, and then checks that
//! nothing the dead owner left looks like the newcomer's, and that take-over still works.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{spawn_with_env, TempRegion};
use shmarena::engine::layout::header;
use shmarena::engine::sync::Ordering;
use shmarena::engine::Memory;
use shmarena::{HashMap, OwnerId, Queue, Region, RegionExt, RegionOptions, TryLockError};

/// Attaches per participant slot before it is retired, in these regions.
const GENERATION_LIMIT: u64 = 4;

/// The owner id in the lock word of mutex `name`.
fn lock_owner(region: &Region, name: &str) -> Option<OwnerId> {
    let entry = region.find_object(name).unwrap().unwrap();
    let word = region.memory().word(entry.offset).unwrap();
    OwnerId::from_bits(word.load(Ordering::SeqCst) as u32 & 0x7fff_ffff)
}

/// Runs a worker until it is killed (by itself at a failpoint, or by us once it printed
/// its first line when `kill_after_line`).
fn run_until_killed(args: &[&str], env: &[(&str, &str)], kill_after_line: bool) {
    let mut child = spawn_with_env(args, env);
    if kill_after_line {
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{args:?}");
}

/// How many participant slots of `region` are retired, read from their slot words.
fn retired_slots(region: &Region) -> u64 {
    let fields = region.header();
    (0..fields.participant_capacity)
        .filter(|slot| {
            let word = region
                .memory()
                .word(fields.participants_offset + slot * 64)
                .unwrap();
            word.load(Ordering::SeqCst) & 0xff == 2
        })
        .count() as u64
}

/// The header's count of retired slots (a hint the sweeps keep exact).
fn retired_count(region: &Region) -> u64 {
    region
        .memory()
        .word(header::RETIRED_SLOTS)
        .unwrap()
        .load(Ordering::SeqCst)
}

/// Opens and drops the region until an attachment gets `id`, sweeping retired slots after
/// each (as opening any object does). At most one slot's whole generation space.
fn attach_until(path: &str, main: &Region, id: OwnerId) -> Region {
    for _ in 0..=OwnerId::MAX_GENERATION + 64 {
        let newcomer = Region::open(path).unwrap();
        if newcomer.participant_id() == id {
            return newcomer;
        }
        drop(newcomer);
        shmarena::sweep::sweep_if_needed(main).unwrap();
    }
    panic!("no attachment got {id} again");
}

#[test]
fn a_dead_owners_id_reissued_after_a_sweep_names_nothing_it_left_and_take_over_works() {
    let temp = TempRegion::new("owner-ids");
    let main = Region::create(&temp.path, 32 << 20).unwrap();
    main.memory()
        .word(header::GENERATION_LIMIT)
        .unwrap()
        .store(GENERATION_LIMIT, Ordering::SeqCst);
    let mutex = main.mutex::<u64>("lock", 0).unwrap();
    let queue = main.queue::<u64>("q", 8).unwrap();
    // The worker's map (its name and capacity).
    let map = main.hash_map::<u64, u64>("m", 1 << 16).unwrap();
    main.array_zeroed::<u64>("acked", 16).unwrap();

    // Three processes of participant slot 1, one after the other, die holding something:
    // a mutex, a claimed queue slot, a claimed map slot.
    run_until_killed(&["hold-mutex", temp.arg(), "lock"], &[], true);
    let mutex_holder = lock_owner(&main, "lock").expect("the dead holder's id");
    run_until_killed(
        &["queue-produce", temp.arg(), "1", "0", "4"],
        &[("SHMARENA_KILL_AT", "queue::push_after_claim:1")],
        false,
    );
    run_until_killed(
        &["map-insert", temp.arg(), "1", "0", "1"],
        &[("SHMARENA_KILL_AT", "hash_map::insert_after_claim:1")],
        false,
    );
    // The next two generations of the slot: the producer's and the inserter's.
    let slot = mutex_holder.slot();
    let producer = OwnerId::new(slot, mutex_holder.generation() + 1);
    let inserter = OwnerId::new(slot, mutex_holder.generation() + 2);
    assert_eq!(map.len(), 0);

    // A newcomer with the dead mutex holder's id does not hold its lock, and takes it over.
    let newcomer = attach_until(temp.arg(), &main, mutex_holder);
    assert_eq!(
        lock_owner(&main, "lock"),
        Some(OwnerId::DEAD),
        "swept before reuse"
    );
    let theirs = shmarena::Mutex::<u64>::open(&newcomer, "lock").unwrap();
    assert!(!theirs.is_held(), "a lock it never took");
    assert!(theirs.release().is_err(), "released a lock it never took");
    let guard = match theirs.lock_timeout(Duration::from_secs(5)) {
        Err(TryLockError::OwnerDied(guard)) => guard,
        Ok(_) => panic!("the dead owner's death went unreported"),
        Err(TryLockError::WouldBlock) => panic!("the dead owner's lock was not taken over"),
    };
    guard.mark_consistent();
    assert!(theirs.is_held());
    assert!(mutex.is_locked() && !mutex.is_held());
    assert!(matches!(mutex.try_lock(), Err(TryLockError::WouldBlock)));
    drop(guard);
    drop(theirs);
    drop(newcomer);
    drop(
        mutex
            .lock_timeout(Duration::from_secs(5))
            .map_err(|_| ())
            .unwrap(),
    );

    // A newcomer with the dead producer's id skips its claim, as anyone else would.
    let newcomer = attach_until(temp.arg(), &main, producer);
    let theirs = Queue::<u64>::open(&newcomer, "q").unwrap();
    theirs.try_push(7).unwrap();
    assert_eq!(
        theirs.try_pop(),
        Some(7),
        "the dead producer's slot was not skipped"
    );
    drop(theirs);
    drop(newcomer);
    assert_eq!(queue.try_pop(), None);

    // A newcomer with the dead inserter's id does not keep its claimed slot alive: the slot
    // is a dead inserter's (freed when an insert needs room), while the newcomer lives.
    let newcomer = attach_until(temp.arg(), &main, inserter);
    let notes: Vec<String> = shmarena::check::check_region(&newcomer)
        .into_iter()
        .map(|finding| finding.to_string())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("1 slots claimed by dead inserters")),
        "{notes:?}"
    );
    let theirs = HashMap::<u64, u64>::open(&newcomer, "m").unwrap();
    for key in 0..64 {
        theirs.insert(key, key).unwrap();
    }
    assert_eq!(theirs.len(), 64);
    drop(theirs);
    drop(newcomer);
    let errors: Vec<_> = shmarena::check::check_region(&main)
        .into_iter()
        .filter(|f| f.severity == shmarena::engine::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn retired_slots_take_no_owner_until_swept_and_sweeps_are_idempotent() {
    let temp = TempRegion::new("owner-ids-retire");
    let main = Region::create(&temp.path, 4 << 20).unwrap();
    main.memory()
        .word(header::GENERATION_LIMIT)
        .unwrap()
        .store(GENERATION_LIMIT, Ordering::SeqCst);
    let me = main.participant_id();
    let mut seen = std::collections::HashSet::new();
    // Without sweeps, every id handed out is new, and slots retire one after the other.
    for _ in 0..3 * GENERATION_LIMIT {
        let newcomer = Region::open(temp.arg()).unwrap();
        let id = newcomer.participant_id();
        assert_ne!(id, me);
        assert!(seen.insert(id), "{id} handed out twice");
        assert!(id.generation() as u64 <= GENERATION_LIMIT);
    }
    assert!(main.has_retired_participants());
    // Slots 1 and 2 used up (slot 3 is at its last generation, not retired yet).
    assert_eq!(main.sweep_retired_participants(|_| Ok(())).unwrap(), 2);
    assert_eq!(main.sweep_retired_participants(|_| Ok(())).unwrap(), 0);
    assert!(!main.has_retired_participants());
    // A sweep that fails leaves the slot retired for the next one.
    for _ in 0..=GENERATION_LIMIT {
        drop(Region::open(temp.arg()).unwrap());
    }
    assert!(main.has_retired_participants());
    let failing = main.sweep_retired_participants(|_| Err(shmarena::Error::Contended("test")));
    assert!(failing.is_err());
    assert!(main.has_retired_participants());
    assert_eq!(main.sweep_retired_participants(|_| Ok(())).unwrap(), 1);
    // A swept slot starts again at generation 1: ids repeat only now, with nothing named.
    let again = Region::open(temp.arg()).unwrap();
    assert_eq!(again.participant_id().generation(), 1);
}

/// Two threads of one region handle share its open file description, and OFD locks do not
/// exclude one description from itself: a second thread of the handle must leave a slot
/// that the first is sweeping alone. Before it did, the second swept the slot too and
/// freed it under the first; a newcomer attached to it and took a lock; the first then
/// purged the newcomer's lock to `DEAD` and stored `FREE` over its live slot word.
#[test]
fn a_second_thread_of_one_handle_leaves_a_slot_the_first_is_sweeping_alone() {
    let temp = TempRegion::new("owner-ids-threads");
    let main = Region::create(&temp.path, 4 << 20).unwrap();
    main.memory()
        .word(header::GENERATION_LIMIT)
        .unwrap()
        .store(GENERATION_LIMIT, Ordering::SeqCst);
    drop(main.mutex::<u64>("lock", 0).unwrap());
    // Slot 1 runs through its generations and retires; the last opener gets slot 2.
    for _ in 0..=GENERATION_LIMIT {
        drop(Region::open(temp.arg()).unwrap());
    }
    assert_eq!((retired_slots(&main), retired_count(&main)), (1, 1));

    // The first sweeper stops inside its purge, with the slot's locks held.
    let (in_purge, purging) = std::sync::mpsc::channel();
    let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    let first = {
        let region = main.clone();
        std::thread::spawn(move || {
            region.sweep_retired_participants(|slot| {
                in_purge.send(slot).unwrap();
                wait_for_go.recv().unwrap();
                shmarena::sweep::retire_owner_slot(&region, slot)
            })
        })
    };
    assert_eq!(purging.recv().unwrap(), 1);
    let second = main
        .sweep_retired_participants(|slot| shmarena::sweep::retire_owner_slot(&main, slot))
        .unwrap();
    // A newcomer attaches (to the swept slot, if the second sweep freed it) and locks.
    let newcomer = Region::open(temp.arg()).unwrap();
    let id = newcomer.participant_id();
    // Another handle of this process has a description of its own: the locks keep it out.
    let by_newcomer = newcomer
        .sweep_retired_participants(|slot| shmarena::sweep::retire_owner_slot(&newcomer, slot))
        .unwrap();
    assert_eq!(by_newcomer, 0);
    let mutex = shmarena::Mutex::<u64>::open(&newcomer, "lock").unwrap();
    let guard = mutex.lock().map_err(|_| ()).unwrap();
    go.send(()).unwrap();
    let first = first.join().unwrap().unwrap();

    assert_eq!(
        lock_owner(&main, "lock"),
        Some(id),
        "a sweep rewrote a live owner's lock"
    );
    assert!(main.is_alive(id), "a sweep freed a live process's slot");
    assert_eq!((first, second), (1, 0), "the slot was swept twice");
    assert_eq!((retired_slots(&main), retired_count(&main)), (0, 0));
    drop(guard);
}

/// A region whose every participant slot is retired (here its only one) still lets a
/// process in: the open waits for a slot, the first object open sweeps the retired slot
/// and takes it, and what the slot's dead owners held is recovered as before (a lock is
/// taken over with `OwnerDied`). Before, the open failed with `ParticipantsFull`, and
/// since only an attached process sweeps, the region was locked out for good.
#[test]
fn a_newcomer_gets_in_when_every_slot_is_retired_and_takes_over_a_dead_owners_lock() {
    let temp = TempRegion::new("owner-ids-one-slot");
    let options = RegionOptions {
        participant_capacity: 1,
        ..RegionOptions::default()
    };
    let creator = Region::create_with(&temp.path, 4 << 20, &options).unwrap();
    creator
        .memory()
        .word(header::GENERATION_LIMIT)
        .unwrap()
        .store(2, Ordering::SeqCst);
    drop(creator.mutex::<u64>("lock", 0).unwrap());
    drop(creator);
    // The slot's second and last generation dies holding the lock.
    run_until_killed(&["hold-mutex", temp.arg(), "lock"], &[], true);

    let newcomer = Region::open(temp.arg()).unwrap();
    assert_eq!(lock_owner(&newcomer, "lock"), Some(OwnerId::new(0, 2)));
    let mutex = shmarena::Mutex::<u64>::open(&newcomer, "lock").unwrap();
    assert_eq!(
        newcomer.participant_id(),
        OwnerId::new(0, 1),
        "the swept slot"
    );
    assert_eq!((retired_slots(&newcomer), retired_count(&newcomer)), (0, 0));
    assert_eq!(lock_owner(&newcomer, "lock"), Some(OwnerId::DEAD));
    let mut guard = match mutex.lock_timeout(Duration::from_secs(5)) {
        Err(TryLockError::OwnerDied(guard)) => guard,
        Ok(_) => panic!("the dead owner's death went unreported"),
        Err(TryLockError::WouldBlock) => panic!("the dead owner's lock was not taken over"),
    };
    assert_eq!(*guard, 0xdead_beef, "what the dead owner left");
    *guard = 1;
    guard.mark_consistent();
    drop(guard);
    let queue = newcomer.queue::<u64>("q", 4).unwrap();
    queue.try_push(5).unwrap();
    assert_eq!(queue.try_pop(), Some(5));
}
