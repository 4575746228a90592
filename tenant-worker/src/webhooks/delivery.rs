//! The delivery pipeline (being written).
