//! Picks the Vulkan adapter, opens the device, and moves f32/u32 data to and from it.

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::kernels::MatmulVariant;

/// An open device and queue, plus what the adapter told us about itself.
pub struct Gpu {
    /// The logical device that buffers and pipelines are created on.
    pub device: wgpu::Device,
    /// The device's queue, where command buffers are submitted.
    pub queue: wgpu::Queue,
    /// The chosen adapter's name, driver and device type.
    pub info: wgpu::AdapterInfo,
}

impl Gpu {
    /// Opens the best Vulkan adapter: a discrete GPU over an integrated one over a CPU
    /// implementation (lavapipe). Fails with [`Error::NoAdapter`] when there is none at all,
    /// so a machine without a driver is an error, never a silent CPU fallback.
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::open())
    }

    async fn open() -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        // Vulkan is the only backend compiled in: lavapipe in CI, the vendor ICD on GPU hosts.
        desc.backends = wgpu::Backends::VULKAN;
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .enumerate_adapters(wgpu::Backends::VULKAN)
            .await
            .into_iter()
            .min_by_key(|a| device_type_rank(a.get_info().device_type))
            .ok_or(Error::NoAdapter)?;
        let info = adapter.get_info();
        if info.device_type == wgpu::DeviceType::Cpu {
            // A GPU host whose vendor driver is missing lands here too, and would serve at a
            // fraction of its speed without a word.
            tracing::warn!(
                adapter = %info.name,
                "the only Vulkan adapter is a CPU implementation; on a machine with a GPU, install its Vulkan driver (NVIDIA: the driver's Vulkan ICD, e.g. libnvidia-gl)"
            );
        }

        let available = adapter.limits();
        // The word embedding table alone is 47 MB; take whatever the adapter allows for
        // single buffers rather than the conservative WebGPU defaults.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: available.max_storage_buffer_binding_size,
            max_buffer_size: available.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("tora-inference"),
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("request_device on {}: {e}", info.name)))?;
        Ok(Self { device, queue, info })
    }

    /// The matmul kernel that suits this adapter (see [`MatmulVariant`]).
    pub fn preferred_matmul(&self) -> MatmulVariant {
        MatmulVariant::for_device_type(self.info.device_type)
    }

    /// A read-only storage buffer holding `data`.
    pub fn upload_f32(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        })
    }

    /// A read-only storage buffer holding `data`.
    pub fn upload_u32(&self, label: &str, data: &[u32]) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE,
        })
    }

    /// An uninitialised storage buffer of `len` f32s for kernel outputs, readable back.
    pub fn scratch_f32(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.storage(label, len, wgpu::BufferUsages::COPY_SRC)
    }

    /// An uninitialised storage buffer of `len` 32-bit words, with `extra` usages (`COPY_DST`
    /// for inputs written in place, `COPY_SRC` for what is read back or copied out).
    pub fn storage(&self, label: &str, len: usize, extra: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        })
    }

    /// Appends a copy of the first `len` f32s of `src` to `encoder`, submits it as one command
    /// buffer, waits, and returns the values.
    pub fn submit_and_read(
        &self,
        encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        len: usize,
    ) -> Result<Vec<f32>> {
        let staging = self.readback_buffer(len);
        self.submit_and_read_through(encoder, src, &staging, len)
    }

    /// A buffer [`Gpu::submit_and_read_through`] can read up to `len` f32s back through.
    pub fn readback_buffer(&self, len: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (len * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// As [`Gpu::submit_and_read`], through `staging` (from [`Gpu::readback_buffer`], at least
    /// `len` f32s), which a caller reading back every step keeps instead of making one each time.
    pub fn submit_and_read_through(
        &self,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        len: usize,
    ) -> Result<Vec<f32>> {
        let size = (len * 4) as u64;
        encoder.copy_buffer_to_buffer(src, 0, staging, 0, size);
        self.queue.submit([encoder.finish()]);

        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..size).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the queue: {e}")))?;
        rx.recv()
            .map_err(|_| Error::Gpu("readback callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
        let view = staging
            .get_mapped_range(..size)
            .map_err(|e| Error::Gpu(format!("reading the readback buffer: {e}")))?;
        let out = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }
}

fn device_type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}
