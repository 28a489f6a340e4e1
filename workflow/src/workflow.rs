//! The handle every service hangs off: the database, the configuration, the clock and the
//! feed of committed notifications.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;

use crate::entities::notification;
use crate::users::Directory;
use crate::work_order::Policy;

/// The work-order categories (and skill groups) when none are configured.
pub const DEFAULT_CATEGORIES: [&str; 8] = [
    "发票业务",
    "申报纳税",
    "个人所得税",
    "社保费",
    "税收优惠",
    "登记与注销",
    "电子税务局操作",
    "其他",
];

#[derive(Debug, Clone)]
pub struct WorkflowConfig {
    pub work_orders: Policy,
    pub categories: Vec<String>,
    /// How long after creation a work order of this category is due.
    pub deadlines: HashMap<String, Duration>,
    pub default_deadline: Duration,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            work_orders: Policy::default(),
            categories: DEFAULT_CATEGORIES.iter().map(|c| c.to_string()).collect(),
            deadlines: HashMap::new(),
            default_deadline: Duration::days(5),
        }
    }
}

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct Workflow {
    pub(crate) db: DatabaseConnection,
    pub(crate) config: Arc<WorkflowConfig>,
    pub(crate) users: Arc<Directory>,
    pub(crate) feed: broadcast::Sender<notification::Model>,
    clock: Clock,
}

impl Workflow {
    pub fn new(db: DatabaseConnection, config: WorkflowConfig) -> Self {
        let (feed, _) = broadcast::channel(1024);
        Workflow {
            db,
            config: Arc::new(config),
            users: Arc::new(Directory::default()),
            feed,
            clock: Arc::new(Utc::now),
        }
    }

    /// Replaces the clock (tests move time instead of sleeping).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn config(&self) -> &WorkflowConfig {
        &self.config
    }

    /// Notifications as they are committed, for realtime delivery.
    pub fn notification_feed(&self) -> broadcast::Receiver<notification::Model> {
        self.feed.subscribe()
    }

    pub(crate) fn publish(&self, written: Vec<notification::Model>) {
        for n in written {
            // No subscriber is not an error: the row is in the database either way.
            let _ = self.feed.send(n);
        }
    }
}

/// A new time-ordered id (UUID v7) as text.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
