//! One probe driven by its state machine.
