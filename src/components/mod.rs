//! Reusable view pieces, one per concept, each with its own scoped CSS block (`.app-bar`, `.check-list`).

mod app_bar;
mod check_list;

pub use app_bar::AppBar;
pub use check_list::CheckList;
