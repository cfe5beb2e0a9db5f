//! Owners and a mock liveness shared by the structures' loom models: owners of generation
//! [`DEAD_GENERATION`] are dead, and so is [`OwnerId::DEAD`]; all others are alive.

#![allow(dead_code)]

use shmarena::engine::Liveness;
use shmarena::OwnerId;

/// Generation of every dead owner in these models; live owners have generation 1.
pub const DEAD_GENERATION: u32 = 9;

/// The live owner of participant slot `slot`.
pub fn live(slot: u32) -> OwnerId {
    OwnerId::new(slot, 1)
}

/// A dead owner of participant slot `slot`.
pub fn dead(slot: u32) -> OwnerId {
    OwnerId::new(slot, DEAD_GENERATION)
}

/// Liveness as seen by owner `.0`.
#[derive(Clone, Copy, Debug)]
pub struct Mock(pub OwnerId);

impl Mock {
    /// The live owner of `slot`.
    pub fn slot(slot: u32) -> Self {
        Self(live(slot))
    }
}

impl Liveness for Mock {
    fn me(&self) -> OwnerId {
        self.0
    }
    fn is_alive(&self, owner: OwnerId) -> bool {
        owner.generation() != DEAD_GENERATION && owner != OwnerId::DEAD
    }
}
