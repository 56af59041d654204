//! The ledger: every fault in force with its undo. Undone newest first, whatever ends
//! the run: its normal end, an error, Ctrl-C ([`undo_all`]), or a panic
//! ([`undo_all_blocking`], from a `Drop`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::event::FaultState;

use super::{emit, FaultInfo};
use crate::chaos::backend::Undo;
use crate::chaos::ServicesInner;

pub(crate) struct Entry {
    pub info: FaultInfo,
    pub undo: Box<dyn Undo>,
    /// Start a recovery watch when it is undone (stalls).
    pub recover_after_undo: bool,
}

#[derive(Default)]
pub(crate) struct Ledger {
    inner: Mutex<(u64, BTreeMap<u64, Entry>)>,
}

impl Ledger {
    pub fn push(&self, e: Entry) -> u64 {
        let mut g = self.inner.lock().unwrap();
        g.0 += 1;
        let id = g.0;
        g.1.insert(id, e);
        id
    }

    pub fn take(&self, id: u64) -> Option<Entry> {
        self.inner.lock().unwrap().1.remove(&id)
    }

    /// The newest entry (undo goes in reverse order).
    pub fn pop_last(&self) -> Option<Entry> {
        self.inner.lock().unwrap().1.pop_last().map(|(_, e)| e)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().1.len()
    }
}

/// Undo everything the ledger holds, newest first; a failed undo is recorded as an event.
pub(crate) async fn undo_all(inner: &ServicesInner) {
    while let Some(e) = inner.ledger.pop_last() {
        match e.undo.undo(inner).await {
            Ok(()) => emit(&inner.events, &e.info, FaultState::Undone),
            Err(reason) => emit(
                &inner.events,
                &e.info,
                FaultState::Failed {
                    reason: format!("undo failed: {reason}"),
                    fatal: false,
                },
            ),
        }
    }
}

/// Panic path: undo without a runtime what can be, newest first.
pub(crate) fn undo_all_blocking(inner: &ServicesInner) {
    while let Some(e) = inner.ledger.pop_last() {
        e.undo.undo_blocking(inner);
    }
}
