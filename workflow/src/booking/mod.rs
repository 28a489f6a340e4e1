//! Appointments (预约): service types and slots, the booking machine and its service.
pub mod machine;
mod notices;
pub mod service;
pub mod service_type;
pub mod slots;
