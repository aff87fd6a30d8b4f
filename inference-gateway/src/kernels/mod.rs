//! Compute kernels: one WGSL shader per kernel, each paired with a plain-Rust reference that
//! defines what it must compute (the CPU embedder runs on those references, and the tests hold
//! each shader to its reference).
//!
//! Tensors are row-major f32; every inner dimension must be a multiple of 4 because shaders
//! read them as vec4s. The recording functions assert their shapes: the model code derives
//! them from a checked config, so a failed assertion is a bug here, never bad user input.

mod attention;
mod embeddings;
mod layer_norm;
mod linear;
mod llama_ops;
mod pooling;
mod quant;

pub use attention::{AttentionDims, HEAD_DIM, attention_cpu};
pub use embeddings::{EmbeddingDims, EmbeddingTables, embeddings_cpu};
pub use layer_norm::{LayerNormDims, layer_norm_cpu};
pub use linear::{Activation, LinearDims, erf_approx, linear_cpu, to_input_major};
pub use llama_ops::{
    CachedAttentionDims, HEAD_DIM as LLAMA_HEAD_DIM, KvCacheDims, KvRow, RopeMode, argmax_cpu,
    cached_attention_cpu, rms_norm_cpu, rope_cpu, rope_table, silu_mul_cpu,
};
pub use pooling::{PoolDims, pool_normalize_cpu};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use quant::{QMatrix, QMatvecDims, QuantFormat, gather_rows_cpu, qmatvec_cpu};

/// Which matmul shader the linear kernel uses, and with it the form of the other kernels whose
/// best form differs between CPU adapters and GPUs (the Llama matvecs, cached attention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulVariant {
    /// A 16 x 16 output block per invocation, no shared memory: CPU adapters (lavapipe) run
    /// each workgroup on one thread, where barriers and shared-memory staging only cost time.
    /// Cached attention is a thread per (head, row).
    Vec4,
    /// 64x64 shared-memory tiles: real GPUs, where global memory bandwidth is the limit.
    /// Cached attention is flash-decoding, a workgroup per (head, row).
    Tiled,
}

impl MatmulVariant {
    /// `Vec4` for a CPU adapter, `Tiled` for any other.
    pub fn for_device_type(t: wgpu::DeviceType) -> Self {
        match t {
            wgpu::DeviceType::Cpu => Self::Vec4,
            _ => Self::Tiled,
        }
    }
}

struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

impl Kernel {
    fn new(device: &wgpu::Device, name: &str, source: &str) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        // Layout inferred from the shader: every kernel uses all of its bindings.
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        Self { pipeline, layout }
    }
}

/// The compiled pipelines for every kernel, built once per device.
pub struct Kernels {
    linear: Kernel,
    layer_norm: Kernel,
    attention: Kernel,
    embeddings: Kernel,
    pooling: Kernel,
    variant: MatmulVariant,
}

impl Kernels {
    /// Compiles the BERT kernels on `device`, the linear one in `variant`.
    pub fn new(device: &wgpu::Device, variant: MatmulVariant) -> Self {
        let linear_src = match variant {
            MatmulVariant::Vec4 => {
                concat!(include_str!("gelu.wgsl"), include_str!("linear_vec4.wgsl"))
            }
            MatmulVariant::Tiled => {
                concat!(include_str!("gelu.wgsl"), include_str!("linear_tiled.wgsl"))
            }
        };
        Self {
            linear: Kernel::new(device, "linear", linear_src),
            layer_norm: Kernel::new(
                device,
                "layer_norm",
                concat!(
                    include_str!("workgroup_sum.wgsl"),
                    include_str!("layer_norm_row.wgsl"),
                    include_str!("layer_norm.wgsl")
                ),
            ),
            attention: Kernel::new(device, "attention", include_str!("attention.wgsl")),
            embeddings: Kernel::new(
                device,
                "embeddings",
                concat!(
                    include_str!("workgroup_sum.wgsl"),
                    include_str!("layer_norm_row.wgsl"),
                    include_str!("embeddings.wgsl")
                ),
            ),
            pooling: Kernel::new(
                device,
                "pooling",
                concat!(include_str!("workgroup_sum.wgsl"), include_str!("pooling.wgsl")),
            ),
            variant,
        }
    }

    /// The matmul shader these kernels were built with.
    pub fn matmul_variant(&self) -> MatmulVariant {
        self.variant
    }
}

/// The compiled pipelines of the Llama kernels, built once per device.
pub struct LlamaKernels {
    /// The matvecs of `variant`.
    matvec_q4_1: Kernel,
    matvec_q8_0: Kernel,
    gather_q8_0: Kernel,
    rms_norm: Kernel,
    rope_store: Kernel,
    attention: Kernel,
    silu_mul: Kernel,
    argmax: Kernel,
    variant: MatmulVariant,
}

impl LlamaKernels {
    /// Compiles the Llama kernels on `device`, the matvecs in `variant`.
    pub fn new(device: &wgpu::Device, variant: MatmulVariant) -> Self {
        // The block decoder is concatenated in front of the variant's matvec body.
        let (q4, q8, attention) = match variant {
            MatmulVariant::Vec4 => (
                concat!(include_str!("q4_1.wgsl"), include_str!("matvec_vec4.wgsl")),
                concat!(include_str!("q8_0.wgsl"), include_str!("matvec_vec4.wgsl")),
                concat!(
                    include_str!("kv_cache_params.wgsl"),
                    include_str!("cached_attention_common.wgsl"),
                    include_str!("cached_attention_per_thread.wgsl")
                ),
            ),
            MatmulVariant::Tiled => (
                concat!(include_str!("q4_1.wgsl"), include_str!("matvec_tiled.wgsl")),
                concat!(include_str!("q8_0.wgsl"), include_str!("matvec_tiled.wgsl")),
                concat!(
                    include_str!("kv_cache_params.wgsl"),
                    include_str!("cached_attention_common.wgsl"),
                    include_str!("cached_attention_flash.wgsl")
                ),
            ),
        };
        Self {
            matvec_q4_1: Kernel::new(device, "matvec_q4_1", q4),
            matvec_q8_0: Kernel::new(device, "matvec_q8_0", q8),
            gather_q8_0: Kernel::new(device, "gather_q8_0", include_str!("gather_q8_0.wgsl")),
            rms_norm: Kernel::new(
                device,
                "rms_norm",
                concat!(include_str!("workgroup_sum.wgsl"), include_str!("rms_norm.wgsl")),
            ),
            rope_store: Kernel::new(
                device,
                "rope_store",
                concat!(include_str!("kv_cache_params.wgsl"), include_str!("rope_store.wgsl")),
            ),
            attention: Kernel::new(device, "cached_attention", attention),
            silu_mul: Kernel::new(device, "silu_mul", include_str!("silu_mul.wgsl")),
            argmax: Kernel::new(device, "argmax", include_str!("argmax.wgsl")),
            variant,
        }
    }

    /// The matvec shader these kernels were built with.
    pub fn matmul_variant(&self) -> MatmulVariant {
        self.variant
    }
}

/// A compute pass being recorded: kernels append dispatches to it, and wgpu inserts the
/// barriers between dependent dispatches, so a whole forward pass is one pass in one command
/// buffer.
pub struct Pass<'a> {
    device: &'a wgpu::Device,
    pass: wgpu::ComputePass<'a>,
    /// Bind groups of an earlier recording of the same dispatches, when the caller keeps one.
    cache: Option<&'a mut BindGroupCache>,
    /// Dispatches recorded so far: the index into `cache`.
    recorded: usize,
}

/// The bind groups (each with its small uniform buffer of parameters) that a pass made, kept
/// for the next recording of the same dispatches. A decode step of one shape makes the same
/// few hundred dispatches with the same parameters over the same buffers every time; only
/// the buffers' contents change, so from the second step on nothing is created.
pub struct BindGroupCache {
    dispatches: Vec<CachedDispatch>,
    /// Bind groups created, counted into the model's one counter (a test's measure of reuse).
    created: Arc<AtomicU64>,
}

struct CachedDispatch {
    pipeline: wgpu::ComputePipeline,
    params: Vec<u32>,
    buffers: Vec<wgpu::Buffer>,
    bind_group: wgpu::BindGroup,
}

impl BindGroupCache {
    /// An empty cache that counts the bind groups it creates into `created`.
    pub fn counting_into(created: &Arc<AtomicU64>) -> Self {
        Self { dispatches: Vec::new(), created: created.clone() }
    }
}

/// What a model's forward passes used, per input shape, for the next pass of the same shape:
/// the newest first, at most `capacity` shapes. A pass takes its shape's entry out and puts it
/// back when done, so concurrent passes never share one.
pub struct ShapeCache<K, V> {
    entries: Vec<(K, V)>,
    capacity: usize,
}

impl<K: PartialEq, V> ShapeCache<K, V> {
    /// An empty cache of at most `capacity` shapes.
    pub fn new(capacity: usize) -> Self {
        Self { entries: Vec::new(), capacity: capacity.max(1) }
    }

    /// The entry of `key`, taken out, or a new one from `make`.
    pub fn take(&mut self, key: &K, make: impl FnOnce() -> V) -> V {
        match self.entries.iter().position(|(k, _)| k == key) {
            Some(i) => self.entries.remove(i).1,
            None => make(),
        }
    }

    /// Puts `value` back as the newest, dropping the oldest beyond the capacity.
    pub fn put(&mut self, key: K, value: V) {
        self.entries.insert(0, (key, value));
        self.entries.truncate(self.capacity);
    }
}

impl<'a> Pass<'a> {
    /// Begins a compute pass on `encoder`; dispatches are recorded until it is dropped.
    pub fn new(device: &'a wgpu::Device, encoder: &'a mut wgpu::CommandEncoder) -> Self {
        Self::begin(device, encoder, None)
    }

    /// As [`Pass::new`], reusing the bind groups `cache` kept from the last recording wherever
    /// a dispatch is the same (kernel, parameters and buffers), and keeping this one's.
    pub fn cached(
        device: &'a wgpu::Device,
        encoder: &'a mut wgpu::CommandEncoder,
        cache: &'a mut BindGroupCache,
    ) -> Self {
        Self::begin(device, encoder, Some(cache))
    }

    fn begin(
        device: &'a wgpu::Device,
        encoder: &'a mut wgpu::CommandEncoder,
        cache: Option<&'a mut BindGroupCache>,
    ) -> Self {
        let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("forward"),
            timestamp_writes: None,
        });
        Self { device, pass, cache, recorded: 0 }
    }

    /// Binds `params` (the shader's uniform struct, as 32-bit words) at binding 0 and `buffers`
    /// at bindings 1.., then dispatches `groups` workgroups.
    fn dispatch(&mut self, kernel: &Kernel, params: &[u32], buffers: &[&wgpu::Buffer], groups: [u32; 3]) {
        let index = self.recorded;
        self.recorded += 1;
        let bind_group = match self.cache.as_deref_mut() {
            None => bind_group(self.device, kernel, params, buffers),
            Some(cache) => {
                let same = cache.dispatches.get(index).is_some_and(|d| {
                    d.pipeline == kernel.pipeline
                        && d.params == params
                        && d.buffers.len() == buffers.len()
                        && d.buffers.iter().zip(buffers).all(|(a, b)| a == *b)
                });
                if !same {
                    let bind_group = bind_group(self.device, kernel, params, buffers);
                    let entry = CachedDispatch {
                        pipeline: kernel.pipeline.clone(),
                        params: params.to_vec(),
                        buffers: buffers.iter().map(|b| (*b).clone()).collect(),
                        bind_group,
                    };
                    cache.dispatches.truncate(index);
                    cache.dispatches.push(entry);
                    cache.created.fetch_add(1, Ordering::Relaxed);
                }
                cache.dispatches[index].bind_group.clone()
            }
        };
        self.pass.set_pipeline(&kernel.pipeline);
        self.pass.set_bind_group(0, &bind_group, &[]);
        self.pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
    }
}

/// A bind group of `params` in its own uniform buffer at binding 0 and `buffers` at 1..: each
/// dispatch has its own, since all of a pass is recorded before the one submit, and rewriting a
/// shared uniform buffer would leave only the last values.
fn bind_group(
    device: &wgpu::Device,
    kernel: &Kernel,
    params: &[u32],
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    use wgpu::util::DeviceExt;
    let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("params"),
        contents: bytemuck::cast_slice(params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
    entries.extend(
        buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }),
    );
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &kernel.layout,
        entries: &entries,
    })
}

fn div_ceil(a: usize, b: usize) -> u32 {
    a.div_ceil(b) as u32
}

/// WebGPU's default `max_compute_workgroups_per_dimension`, which the device keeps.
const MAX_GROUPS_PER_DIMENSION: usize = 65_535;

/// One workgroup for each of `n` rows, along one dimension of a dispatch.
fn group_per_row(n: usize) -> u32 {
    assert!(n <= MAX_GROUPS_PER_DIMENSION, "{n} rows pass the dispatch limit");
    n as u32
}
