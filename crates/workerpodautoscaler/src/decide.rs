//! `decide`: one decision per JSON line (filled in below).
