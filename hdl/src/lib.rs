//! bnnforge-hdl
