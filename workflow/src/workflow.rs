//! The handle every service hangs off: the database, the configuration, the clock and the
//! feed of committed notifications.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{Notify, mpsc, watch};

use crate::calendar::Calendar;
use crate::entities::notification;
use crate::fanout::{Fanout, Subscription};
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
    /// How long after creation a work order of this category is due. Whole days are
    /// counted as working days of the calendar; anything else as plain time.
    pub deadlines: HashMap<String, Duration>,
    pub default_deadline: Duration,
    pub calendar: Calendar,
    /// What taxpayers may book (预约服务类型); by default the bundled list.
    pub service_types: Vec<crate::booking::service_type::ServiceType>,
    pub booking: crate::booking::service::BookingPolicy,
    /// Whether a known user's role follows a token that claims another one; when false
    /// such a token is refused (`FORBIDDEN`), so one id space cannot flip staff and
    /// taxpayers into each other.
    pub follow_role_changes: bool,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            work_orders: Policy::default(),
            categories: DEFAULT_CATEGORIES.iter().map(|c| c.to_string()).collect(),
            deadlines: HashMap::new(),
            default_deadline: Duration::days(5),
            calendar: Calendar::bundled(),
            service_types: crate::booking::service_type::bundled(),
            booking: Default::default(),
            follow_role_changes: false,
        }
    }
}

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct Workflow {
    pub(crate) db: DatabaseConnection,
    /// For reads outside any transaction: on SQLite a pool of read-only connections beside
    /// the one writer, so reads never queue behind a write; on PostgreSQL a second pool, so
    /// they never wait for a connection behind transactions.
    reader: DatabaseConnection,
    pub(crate) config: Arc<WorkflowConfig>,
    pub(crate) users: Arc<Directory>,
    pub(crate) feed: Arc<NotificationFeed>,
    pub(crate) job_signal: Arc<Notify>,
    /// PostgreSQL: wakes the other instances' schedulers after commits that wrote jobs.
    pub(crate) job_wake: Option<Arc<crate::job_wake::JobWake>>,
    /// Work-order numbers reserved in blocks (no hot counter row in every create).
    pub(crate) numbers: Arc<crate::counter::NumberBlocks>,
    clock: Clock,
}

impl Workflow {
    pub fn new(db: DatabaseConnection, config: WorkflowConfig) -> Self {
        Workflow {
            reader: db.clone(),
            job_wake: crate::job_wake::JobWake::new(&db),
            numbers: Arc::default(),
            db,
            config: Arc::new(config),
            users: Arc::new(Directory::default()),
            feed: Arc::new(NotificationFeed::new()),
            job_signal: Arc::new(Notify::new()),
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

    /// Reads through `reader` from now on (see [`Workflow::reader`]).
    pub fn with_reader(mut self, reader: DatabaseConnection) -> Self {
        self.reader = reader;
        self
    }

    /// The connection every write and every transaction goes through.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// For a read outside any transaction that must not wait behind a write (lists,
    /// history, the bot's look-ups, health). Never for a transaction or a write: on SQLite
    /// these connections refuse writes (`query_only`), and a transaction that read on one
    /// connection and wrote on another could act on a stale snapshot.
    pub fn reader(&self) -> &DatabaseConnection {
        &self.reader
    }

    pub fn config(&self) -> &WorkflowConfig {
        &self.config
    }

    /// Signalled after a commit that wrote jobs, so a sleeping scheduler looks again.
    pub fn job_signal(&self) -> Arc<Notify> {
        self.job_signal.clone()
    }

    /// When a work order of `category` created at `from` is due.
    pub fn deadline_for(&self, category: &str, from: DateTime<Utc>) -> DateTime<Utc> {
        let d = self
            .config
            .deadlines
            .get(category)
            .copied()
            .unwrap_or(self.config.default_deadline);
        let whole_days = d > Duration::zero() && d.num_seconds() % 86_400 == 0;
        if whole_days {
            self.config
                .calendar
                .add_working_days(from, d.num_days() as u32)
        } else {
            from + d
        }
    }

    /// The user's notifications as they are committed, for realtime delivery (on this
    /// instance, and from others through the relay).
    pub fn notifications_of(&self, user_id: &str) -> Subscription<notification::Model> {
        self.feed.by_user.subscribe(user_id)
    }

    /// Changes when notifications from other instances may have been missed (the relay
    /// reconnected): subscribers then read what they missed with [`Workflow::notifications_since`].
    pub fn notification_resyncs(&self) -> watch::Receiver<u64> {
        self.feed.resync.subscribe()
    }

    pub fn resync_notifications(&self) {
        self.feed.resync.send_modify(|n| *n += 1);
    }

    /// Hands every notification published here to `outlet` too (the cross-instance relay).
    /// Only the first outlet is kept; returns whether this one was.
    pub fn set_notification_outlet(
        &self,
        outlet: mpsc::UnboundedSender<notification::Model>,
    ) -> bool {
        self.feed.outlet.set(outlet).is_ok()
    }

    /// Delivers a notification written by another instance to this instance's subscribers.
    pub fn deliver_notification(&self, n: notification::Model) {
        self.feed.by_user.send(&n.user_id.clone(), n);
    }

    /// A user's notifications created at or after `since`, oldest first (at most 500): what a
    /// subscriber reads to catch up after a resync.
    pub async fn notifications_since(
        &self,
        user_id: &str,
        since: DateTime<Utc>,
    ) -> crate::error::Result<Vec<notification::Model>> {
        Ok(notification::Entity::find()
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::CreatedAt.gte(since))
            .order_by_asc(notification::Column::CreatedAt)
            .order_by_asc(notification::Column::Id)
            .limit(500)
            .all(&self.db)
            .await?)
    }

    pub(crate) fn publish(&self, written: Vec<notification::Model>) {
        for n in written {
            if let Some(outlet) = self.feed.outlet.get() {
                // A closed outlet (relay stopped) loses nothing stored: the row is written.
                let _ = outlet.send(n.clone());
            }
            // No subscriber is not an error: the row is in the database either way.
            self.deliver_notification(n);
        }
    }
}

/// Notifications buffered per user for the subscriptions.
const NOTIFICATIONS_PER_USER: usize = 16;

/// Committed notifications on their way to the `notifications` subscriptions: per user, so a
/// notification wakes only its user's subscribers.
pub(crate) struct NotificationFeed {
    by_user: Fanout<notification::Model>,
    outlet: OnceLock<mpsc::UnboundedSender<notification::Model>>,
    resync: watch::Sender<u64>,
}

impl NotificationFeed {
    fn new() -> NotificationFeed {
        NotificationFeed {
            // A user's burst is a handful; a slower subscriber lags and catches up from the
            // table. tokio allocates every slot up front, per user: 256 cost ~55 KiB each.
            by_user: Fanout::new(NOTIFICATIONS_PER_USER),
            outlet: OnceLock::new(),
            resync: watch::channel(0).0,
        }
    }
}

/// A new time-ordered id (UUID v7) as text.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
