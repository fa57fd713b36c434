//! bnnforge-testbench
