//! wgpu inference gateway metered in TORA through escrow vouchers.
