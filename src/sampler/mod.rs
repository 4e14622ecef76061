//! Samplers: one module per algorithm. Nothing here knows about MPI, files or
//! threads beyond the rayon pool it is run inside.

pub mod ensemble;
pub mod moves;

pub use ensemble::{
    split_range, Ensemble, EnsembleSettings, HalfView, Init, SampleError, WalkerShare, Whole,
};
pub use moves::{Move, WeightedMove};
