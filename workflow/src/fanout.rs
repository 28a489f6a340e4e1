//! Per-key fan-out: one broadcast channel per key (a chat session, a user), made on the first
//! subscribe and dropped with its last subscriber. An event wakes only the subscribers of its
//! key, so delivery costs O(audience), not O(every subscriber of the process).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
pub use tokio::sync::broadcast::error::RecvError;

type Senders<T> = Arc<Mutex<HashMap<String, broadcast::Sender<T>>>>;

pub struct Fanout<T> {
    senders: Senders<T>,
    /// Events a slow subscriber may fall behind by before it is told it lagged.
    capacity: usize,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the map leaves it consistent (single inserts/removes).
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: Clone> Fanout<T> {
    pub fn new(capacity: usize) -> Fanout<T> {
        Fanout {
            senders: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    pub fn subscribe(&self, key: &str) -> Subscription<T> {
        let rx = locked(&self.senders)
            .entry(key.to_string())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe();
        Subscription {
            rx: Some(rx),
            key: key.to_string(),
            senders: self.senders.clone(),
        }
    }

    /// Delivers to the key's subscribers; returns how many there were.
    pub fn send(&self, key: &str, value: T) -> usize {
        // Cloned out so the map is not locked while receivers are woken.
        let tx = locked(&self.senders).get(key).cloned();
        tx.and_then(|tx| tx.send(value).ok()).unwrap_or(0)
    }

    /// Keys with at least one subscriber.
    pub fn keys(&self) -> usize {
        locked(&self.senders).len()
    }
}

/// One subscriber of one key; its channel goes away with the key's last subscriber.
pub struct Subscription<T> {
    rx: Option<broadcast::Receiver<T>>,
    key: String,
    senders: Senders<T>,
}

impl<T: Clone> Subscription<T> {
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(RecvError::Closed),
        }
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        let mut senders = locked(&self.senders);
        // Under the lock no one can subscribe meanwhile: drop our receiver, then the channel
        // if that was the last one.
        self.rx = None;
        if senders
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            senders.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_reach_only_their_key_and_channels_go_with_their_last_subscriber() {
        let f: Fanout<i32> = Fanout::new(8);
        let mut a1 = f.subscribe("a");
        let mut a2 = f.subscribe("a");
        let mut b = f.subscribe("b");
        assert_eq!(f.send("a", 1), 2);
        assert_eq!(f.send("c", 9), 0, "nobody listens to c");
        assert_eq!(a1.recv().await, Ok(1));
        assert_eq!(a2.recv().await, Ok(1));
        assert_eq!(f.send("b", 2), 1);
        assert_eq!(b.recv().await, Ok(2));
        assert_eq!(f.keys(), 2);
        drop(a1);
        assert_eq!(f.keys(), 2, "a still has a subscriber");
        drop(a2);
        drop(b);
        assert_eq!(f.keys(), 0);
    }
}
