//! The probe state machine.
