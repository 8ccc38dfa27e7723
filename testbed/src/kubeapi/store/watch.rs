//! The bounded history of changes that watches replay: each write records an event with the
//! new resourceVersion; the oldest go once there are more than the limit.

use serde_json::Value;

use super::super::resources::ResourceType;
use super::Store;

/// What a watch event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, kept in the history for watches.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub kind: EventType,
    /// The object after the change (for DELETED: as it was removed).
    pub object: Value,
    /// The object before the change (MODIFIED and DELETED), to tell selector transitions.
    pub previous: Option<Value>,
}

impl Store {
    pub(super) fn record(
        &mut self,
        rt: &ResourceType,
        kind: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        self.history.push_back(Event {
            rv: self.rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            kind,
            object,
            previous,
        });
        while self.history.len() > self.history_limit {
            if let Some(gone) = self.history.pop_front() {
                self.floor = gone.rv;
            }
        }
    }

    /// The events of `group`/`plural` newer than `after`, or `Err(floor)` when some of them are
    /// no longer kept.
    pub fn events_after(
        &self,
        after: u64,
        group: &str,
        plural: &str,
    ) -> std::result::Result<Vec<Event>, u64> {
        if after < self.floor {
            return Err(self.floor);
        }
        let start = self.history.partition_point(|e| e.rv <= after);
        Ok(self
            .history
            .range(start..)
            .filter(|e| e.group == group && e.plural == plural)
            .cloned()
            .collect())
    }
}
