//! robust tests.
