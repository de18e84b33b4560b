//! The receiving side: in-order delivery with a bounded reorder buffer.

use std::collections::BTreeMap;

/// Early arrivals held by default; the plugin's
/// `IncomingMessageBufferCapacity` is 10 000.
pub const DEFAULT_REORDER_CAPACITY: usize = 10_000;

/// What became of one received stream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receive<T> {
    /// The message was the next expected one: it is returned first,
    /// followed by every buffered message that now continues the sequence.
    Deliver(Vec<T>),
    /// The message is early and is held until the gap before it fills.
    Buffered,
    /// The message was delivered or buffered before; it is dropped.
    Duplicate,
    /// The message is early but there is no room for it (the buffer is
    /// full or it is too far ahead); it is dropped unacknowledged so the
    /// sender retransmits it later.
    Overflow,
}

impl<T> Receive<T> {
    /// Whether the message should be acknowledged.
    ///
    /// Duplicates are acknowledged again, because a duplicate usually
    /// means the first acknowledgement was lost and the sender would
    /// otherwise retransmit until it gives up. (The plugin does not re-ack
    /// duplicates; re-acking is harmless to it, as it ignores
    /// acknowledgements for numbers it no longer holds.)
    pub fn should_acknowledge(&self) -> bool {
        !matches!(self, Receive::Overflow)
    }
}

/// Puts incoming stream messages back in sequence order.
#[derive(Debug, Clone)]
pub struct ReorderBuffer<T> {
    expected: i64,
    early: BTreeMap<i64, T>,
    capacity: usize,
}

impl<T> ReorderBuffer<T> {
    /// A buffer expecting sequence number 0 and holding at most `capacity`
    /// early messages.
    pub fn new(capacity: usize) -> Self {
        Self::starting_at(0, capacity)
    }

    /// A buffer expecting `expected` next, e.g. after restoring state.
    pub fn starting_at(expected: i64, capacity: usize) -> Self {
        Self {
            expected,
            early: BTreeMap::new(),
            capacity,
        }
    }

    /// The next sequence number to deliver.
    pub fn expected(&self) -> i64 {
        self.expected
    }

    /// Number of early messages held.
    pub fn buffered_len(&self) -> usize {
        self.early.len()
    }

    /// Takes in the message numbered `sequence_number`.
    pub fn receive(&mut self, sequence_number: i64, item: T) -> Receive<T> {
        if sequence_number < self.expected {
            return Receive::Duplicate;
        }
        if sequence_number == self.expected {
            let mut out = vec![item];
            self.advance();
            while let Some(next) = self.early.remove(&self.expected) {
                out.push(next);
                self.advance();
            }
            return Receive::Deliver(out);
        }
        if self.early.contains_key(&sequence_number) {
            return Receive::Duplicate;
        }
        // Only the `capacity` numbers right after the gap can ever be
        // useful; anything further would hold a slot for nothing.
        let distance = i128::from(sequence_number) - i128::from(self.expected);
        let in_range = usize::try_from(distance).is_ok_and(|d| d <= self.capacity);
        if !in_range || self.early.len() >= self.capacity {
            return Receive::Overflow;
        }
        self.early.insert(sequence_number, item);
        Receive::Buffered
    }

    fn advance(&mut self) {
        // Saturating: a peer cannot make this overflow; at i64::MAX the
        // stream simply ends.
        self.expected = self.expected.saturating_add(1);
    }
}

impl<T> Default for ReorderBuffer<T> {
    fn default() -> Self {
        Self::new(DEFAULT_REORDER_CAPACITY)
    }
}
