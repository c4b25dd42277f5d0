//! ws tests.
