//! Integration tests of the Web API: a real server over real HTTP.

mod helpers;
mod users;
