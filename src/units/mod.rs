//! The arithmetic units, one file each: its `Config`, its `Module`, `forward` with the formula
//! and shapes in its doc comment, its [`ArithmeticUnit`](crate::ArithmeticUnit) and
//! [`Discretize`](crate::formula::Discretize) implementations and its unit tests. Each module is
//! also at the crate root (`burn_nalu::nac`).

pub mod dmu;
pub mod hill;
pub mod inalu;
pub mod nac;
pub mod nac_mul;
pub mod nalu;
pub mod nau;
pub mod nmru;
pub mod nmu;
pub mod npu;
pub mod nru;
pub mod real_npu;
pub mod snmu;
