//! An online consistency check of a region: header, arena free lists and catalog, read
//! while other processes stay attached and keep working.
//!
//! Every finding names its place. Concurrent work can make a single read of a free list
//! look broken (a block popped and reused under the walk), so a walk that fails is
//! retried, and arena and catalog are checked twice with only the findings of both passes
//! reported; everything else the check reads is immutable or validated word by word.

use crate::arena::class_size;

use crate::layout::{header, HEADER_FIELD_WORDS, SIZE_CLASSES};
use crate::memory::Memory;
use crate::sync::Ordering;
use crate::{HeaderFields, Region};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A state the engine recovers from by itself (a dead owner's claim, a stale slot).
    Note,
    /// Something is wrong: shmarena's invariants do not hold.
    Error,
}

/// One thing the check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// Where: "header", "arena class 3", "object \"jobs\"", ...
    pub place: String,
    /// What.
    pub message: String,
}

impl Finding {
    /// An error at `place`.
    pub fn error(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            place: place.into(),
            message: message.into(),
        }
    }

    /// A note at `place`.
    pub fn note(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Note,
            place: place.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Note => "note",
            Severity::Error => "ERROR",
        };
        write!(f, "{level}: {}: {}", self.place, self.message)
    }
}

/// Walks of a free list before a failure is believed.
const WALK_ATTEMPTS: usize = 3;

impl Region {
    /// Checks the header, arena and catalog (structures check their own bodies: see
    /// `shmarena::check`). Read-only; safe to run while other processes work.
    pub fn verify(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        self.verify_header(&mut findings);
        // Two passes over arena and catalog: a block allocated or freed during a walk can
        // look like an overlap once; a real one shows up both times.
        let mut first = Vec::new();
        let free = self.verify_arena(&mut first);
        self.verify_catalog(&free, &mut first);
        let mut second = Vec::new();
        let free = self.verify_arena(&mut second);
        self.verify_catalog(&free, &mut second);
        findings.extend(second.into_iter().filter(|finding| first.contains(finding)));
        self.verify_participants(&mut findings);
        findings
    }

    fn verify_header(&self, findings: &mut Vec<Finding>) {
        let memory = self.memory();
        let mut words = [0u64; HEADER_FIELD_WORDS];
        for (i, word) in words.iter_mut().enumerate() {
            // Relaxed: immutable fields, compared with this process's validated copy.
            match memory.word(8 * i as u64) {
                Ok(cell) => *word = cell.load(Ordering::Relaxed),
                Err(error) => findings.push(Finding::error("header", error.to_string())),
            }
        }
        let current: HeaderFields = bytemuck::cast(words);
        if current != *self.header() {
            findings.push(Finding::error(
                "header",
                format!(
                    "immutable fields changed since this process opened the region: {current:?}"
                ),
            ));
        }
        // Relaxed: a snapshot.
        let state = memory
            .word(header::STATE)
            .map(|w| w.load(Ordering::Relaxed));
        if !matches!(state, Ok(header::STATE_READY)) {
            findings.push(Finding::error(
                "header",
                format!("state is {state:?}, not READY"),
            ));
        }
    }

    /// Checks the bump pointer and walks every free list; returns the free blocks
    /// `(offset, size)` that were found.
    fn verify_arena(&self, findings: &mut Vec<Finding>) -> Vec<(u64, u64)> {
        let fields = self.header();
        // Relaxed: a snapshot.
        let bump = self
            .memory()
            .word(header::ARENA_BUMP)
            .map(|w| w.load(Ordering::Relaxed));
        match bump {
            Ok(bump)
                if (fields.arena_offset..=fields.arena_end).contains(&bump)
                    && bump % crate::layout::BLOCK_ALIGN == 0 => {}
            other => findings.push(Finding::error(
                "arena",
                format!("bump pointer {other:?} is outside the arena"),
            )),
        }
        let arena = self.arena();
        let mut free = Vec::new();
        for class in 0..SIZE_CLASSES {
            let mut last_error = None;
            for _ in 0..WALK_ATTEMPTS {
                match arena.free_list(class) {
                    Ok(blocks) => {
                        free.extend(blocks.into_iter().map(|offset| (offset, class_size(class))));
                        last_error = None;
                        break;
                    }
                    Err(error) => last_error = Some(error),
                }
            }
            if let Some(error) = last_error {
                findings.push(Finding::error(
                    format!("arena class {class}"),
                    error.to_string(),
                ));
            }
        }
        free
    }

    fn verify_catalog(&self, free: &[(u64, u64)], findings: &mut Vec<Finding>) {
        let fields = self.header();
        let entries = match self.objects() {
            Ok(entries) => entries,
            Err(error) => {
                findings.push(Finding::error("catalog", error.to_string()));
                return;
            }
        };
        let mut extents: Vec<(u64, u64, String)> = free
            .iter()
            .map(|&(offset, size)| (offset, offset + size, format!("free block at {offset}")))
            .collect();
        for entry in &entries {
            let place = format!("object {:?}", entry.name);
            if !entry.ready {
                let owner_alive = entry.owner.is_some_and(|owner| self.is_alive(owner));
                if !owner_alive {
                    findings.push(Finding::note(
                        place,
                        "under construction by a dead process: the next get_or_create rebuilds it",
                    ));
                }
                continue;
            }
            let end = entry.offset.checked_add(entry.size);
            if entry.offset < fields.arena_offset || end.is_none_or(|end| end > fields.arena_end) {
                findings.push(Finding::error(
                    place,
                    format!(
                        "body {}+{} lies outside the arena",
                        entry.offset, entry.size
                    ),
                ));
                continue;
            }
            extents.push((entry.offset, entry.offset + entry.size.max(1), place));
        }
        extents.sort_by_key(|extent| extent.0);
        for pair in extents.windows(2) {
            if pair[1].0 < pair[0].1 {
                findings.push(Finding::error(
                    pair[1].2.clone(),
                    format!(
                        "overlaps {} ({}..{} and {}..{})",
                        pair[0].2, pair[0].0, pair[0].1, pair[1].0, pair[1].1
                    ),
                ));
            }
        }
    }

    fn verify_participants(&self, findings: &mut Vec<Finding>) {
        match self.participants() {
            Ok(rows) => {
                for row in rows.iter().filter(|row| row.active && !row.alive) {
                    let waiting = if row.retired == 0 {
                        String::new()
                    } else {
                        format!(", which frees the {} retired blocks it left", row.retired)
                    };
                    findings.push(Finding::note(
                        format!("participant slot {}", row.slot),
                        format!(
                            "pid {} died attached; its slot is reused by the next attach{waiting}",
                            row.pid
                        ),
                    ));
                }
            }
            Err(error) => findings.push(Finding::error("participants", error.to_string())),
        }
    }
}
