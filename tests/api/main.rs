//! End-to-end tests: each starts the real server on a random port with its own database
//! (a fresh SQLite file, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is set) and
//! drives it over HTTP and WebSocket. One binary, so the suite links once.

mod helpers;

mod hours;

mod attachments;
mod bookings;
mod burst;
mod channels;
mod chat;
mod chat_timers;
mod cli;
mod disabled_faqs;
mod hostile;
mod identity;
mod kb;
mod leave_messages;
mod limits;
mod notifications;
mod pages;
mod reads_beside_a_write;
mod review;
mod scale_out;
mod scheduler;
mod semantic;
mod slots;
mod smtp;
mod token_checks;
mod transport;
mod uploads;
mod work_orders;
mod ws_tokens;
