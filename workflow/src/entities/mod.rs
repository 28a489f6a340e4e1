//! sea-orm entities, one file per table. Statuses are stored as stable strings.

pub mod booking;
pub mod booking_history;
pub mod booking_slot;
pub mod job;
pub mod leave_message;
pub mod leave_message_history;
pub mod leave_message_reply;
pub mod notification;
pub mod outbox_email;
pub mod user;
pub mod work_order;
pub mod work_order_history;
