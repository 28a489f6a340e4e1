//! Once and in order: what a `chatEvents` subscriber does with each message it is handed,
//! given the last `seq` it delivered. Messages of a session commit in `seq` order (each
//! takes the session row's next `seq` inside its transaction), but they reach a subscriber
//! in publish order, from this and other instances, and some may not reach it at all (a
//! lost relay connection, a lagging channel). The database fills the holes.

/// What to do with a message of `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The next one: deliver it.
    Next,
    /// Delivered already (by a catch-up, or an echo): drop it.
    Duplicate,
    /// Messages `after+1 .. seq-1` are missing: read them from the database, deliver them,
    /// then this one.
    Gap { after: i64 },
}

/// The last message `seq` a subscriber delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageOrder {
    last: i64,
}

impl MessageOrder {
    /// Starting after `last` (the session's `last_seq` when the subscription began).
    pub fn after(last: i64) -> MessageOrder {
        MessageOrder { last }
    }

    pub fn last(&self) -> i64 {
        self.last
    }

    pub fn admit(&self, seq: i64) -> Admit {
        if seq <= self.last {
            Admit::Duplicate
        } else if seq == self.last + 1 {
            Admit::Next
        } else {
            Admit::Gap { after: self.last }
        }
    }

    /// Records a delivery; returns false (and changes nothing) for a duplicate.
    pub fn deliver(&mut self, seq: i64) -> bool {
        if seq <= self.last {
            return false;
        }
        self.last = seq;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_message_goes_through_and_older_ones_are_duplicates() {
        let mut o = MessageOrder::after(3);
        assert_eq!(o.admit(4), Admit::Next);
        assert!(o.deliver(4));
        assert_eq!(o.admit(4), Admit::Duplicate);
        assert_eq!(o.admit(1), Admit::Duplicate);
        assert!(!o.deliver(2));
        assert_eq!(o.last(), 4);
    }

    #[test]
    fn a_jump_is_a_gap_from_the_last_delivered() {
        let mut o = MessageOrder::after(4);
        assert_eq!(o.admit(7), Admit::Gap { after: 4 });
        // The caller reads 5 and 6 from the database, then delivers 7.
        for seq in 5..=7 {
            assert!(o.deliver(seq));
        }
        assert_eq!(o.admit(6), Admit::Duplicate, "a late 6 is dropped");
        assert_eq!(o.admit(8), Admit::Next);
    }
}
