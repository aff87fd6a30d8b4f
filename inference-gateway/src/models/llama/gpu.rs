//! The Llama forward pass on the GPU: the KV cache (one slot per sequence) stays in GPU
//! memory, every step is one command buffer for all the sequences in it, and a greedy step
//! reads back 4 bytes per sequence (the argmax) instead of the logits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{
    BindGroupCache, KvCacheDims, KvRow, LlamaKernels, MatmulVariant, Pass, QMatvecDims, QuantFormat,
    ShapeCache, rope_table,
};

use super::{Decoder, GpuWeights, HostWeights, LlamaConfig, MAX_CONTEXT, SeqStep, check_steps};

/// The Llama decoder on a Vulkan adapter, weights and KV cache in GPU memory.
pub struct GpuLlama {
    gpu: Gpu,
    kernels: LlamaKernels,
    /// The model's hyper-parameters.
    pub cfg: LlamaConfig,
    weights: GpuWeights,
    rope: wgpu::Buffer,
    /// [slots, layers, MAX_CONTEXT, kv_dim] each.
    k_cache: wgpu::Buffer,
    v_cache: wgpu::Buffer,
    /// Per slot, the positions held.
    positions: Vec<usize>,
    passes: u64,
    /// Bind groups the steps have created, counted by every shape's caches.
    bind_groups_created: Arc<AtomicU64>,
    /// What the steps of the latest shapes (tokens, sequences) used (see [`StepResources`]).
    shapes: ShapeCache<(usize, usize), StepResources>,
}

/// Shapes whose step resources are kept: a prompt's prefill and the decode steps after it
/// alternate between a few.
const KEPT_SHAPES: usize = 4;

/// A step's buffers and bind groups for one shape (tokens, sequences), made by its first step
/// and reused by the next ones: decoding repeats one shape token after token, and creating a
/// few hundred bind groups, uniform buffers and a dozen buffers per token costs more than
/// small kernels do on a GPU. Steps run one at a time (each waits for its readback), so
/// reusing them never races an earlier step.
struct StepResources {
    ids: wgpu::Buffer,
    rows: wgpu::Buffer,
    x: wgpu::Buffer,
    xn: wgpu::Buffer,
    qkv: wgpu::Buffer,
    ctx: wgpu::Buffer,
    gate_up: wgpu::Buffer,
    act: wgpu::Buffer,
    last: wgpu::Buffer,
    last_n: wgpu::Buffer,
    logits: wgpu::Buffer,
    best: wgpu::Buffer,
    readback: wgpu::Buffer,
    forward: BindGroupCache,
    head: BindGroupCache,
}

impl StepResources {
    fn new(gpu: &Gpu, cfg: &LlamaConfig, m: usize, n: usize, created: &Arc<AtomicU64>) -> Self {
        let none = wgpu::BufferUsages::empty();
        let input = wgpu::BufferUsages::COPY_DST;
        Self {
            ids: gpu.storage("ids", m, input),
            // Two words, (slot, pos), per row: KvRow::words.
            rows: gpu.storage("kv_rows", m * 2, input),
            x: gpu.storage("x", m * cfg.hidden, wgpu::BufferUsages::COPY_SRC),
            xn: gpu.storage("xn", m * cfg.hidden, none),
            qkv: gpu.storage("qkv", m * cfg.qkv_dim(), none),
            ctx: gpu.storage("ctx", m * cfg.hidden, none),
            gate_up: gpu.storage("gate_up", m * 2 * cfg.ffn, none),
            act: gpu.storage("act", m * cfg.ffn, none),
            last: gpu.storage("last", n * cfg.hidden, wgpu::BufferUsages::COPY_DST),
            last_n: gpu.storage("last_n", n * cfg.hidden, none),
            logits: gpu.storage("logits", n * cfg.vocab, wgpu::BufferUsages::COPY_SRC),
            best: gpu.storage("argmax", n, wgpu::BufferUsages::COPY_SRC),
            readback: gpu.readback_buffer(n * cfg.vocab),
            forward: BindGroupCache::counting_into(created),
            head: BindGroupCache::counting_into(created),
        }
    }
}

/// What a step's command buffer ends with.
enum Head {
    Logits,
    Argmax,
}

impl GpuLlama {
    /// Uploads `host` to the best Vulkan adapter, with the matvec variant that suits it unless
    /// `variant` forces one, and a KV cache of one slot.
    pub fn new(cfg: LlamaConfig, host: &HostWeights, variant: Option<MatmulVariant>) -> Result<Self> {
        Self::with_slots(cfg, host, variant, 1)
    }

    /// As [`GpuLlama::new`] with a KV cache of `slots` sequences, fewer when one cache buffer
    /// of that many would pass the adapter's limit on a buffer binding.
    pub fn with_slots(
        cfg: LlamaConfig,
        host: &HostWeights,
        variant: Option<MatmulVariant>,
        slots: usize,
    ) -> Result<Self> {
        host.check_gpu_formats()?;
        let gpu = Gpu::new()?;
        let slot_bytes = (slot_len(&cfg) * 4) as u64;
        let limits = gpu.device.limits();
        let limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        // The shaders index the caches with u32s too.
        let fit = (limit.min(u64::from(u32::MAX)) / slot_bytes) as usize;
        if fit == 0 {
            return Err(Error::Gpu(format!("a {slot_bytes}-byte KV cache passes the adapter's {limit}")));
        }
        let slots = slots.clamp(1, fit);
        let kernels = LlamaKernels::new(&gpu.device, variant.unwrap_or_else(|| gpu.preferred_matmul()));
        let weights = host.upload(&gpu, kernels.matmul_variant());
        let rope = gpu.upload_f32("rope", &rope_table(MAX_CONTEXT, cfg.rope_base));
        let cache_len = slots * slot_len(&cfg);
        let k_cache = gpu.storage("k_cache", cache_len, wgpu::BufferUsages::empty());
        let v_cache = gpu.storage("v_cache", cache_len, wgpu::BufferUsages::empty());
        let positions = vec![0; slots];
        let shapes = ShapeCache::new(KEPT_SHAPES);
        Ok(Self {
            gpu,
            kernels,
            cfg,
            weights,
            rope,
            k_cache,
            v_cache,
            positions,
            passes: 0,
            bind_groups_created: Arc::default(),
            shapes,
        })
    }

    /// Bind groups the steps have created so far: a step of a shape already run creates none.
    pub fn bind_groups_created(&self) -> u64 {
        self.bind_groups_created.load(Ordering::Relaxed)
    }

    /// The Vulkan adapter the model runs on.
    pub fn adapter(&self) -> &wgpu::AdapterInfo {
        &self.gpu.info
    }

    /// The matvec shader in use.
    pub fn matmul_variant(&self) -> MatmulVariant {
        self.kernels.matmul_variant()
    }

    /// Records and submits one forward pass of every step's tokens, as rows of the same
    /// matmuls; returns, per step, the logits after its last token (as f32s) or the argmax (one
    /// u32, as the bits of one f32), concatenated.
    fn step(&mut self, steps: &[SeqStep<'_>], head: Head) -> Result<Vec<f32>> {
        check_steps(steps, self.positions.len(), self.cfg.vocab, |s| self.positions[s])?;
        let mut ids = Vec::new();
        let mut rows = Vec::new();
        // The row of each step's last token: the only ones whose logits are needed.
        let mut lasts = Vec::with_capacity(steps.len());
        for s in steps {
            let pos0 = self.positions[s.slot];
            ids.extend_from_slice(s.ids);
            rows.extend((pos0..pos0 + s.ids.len()).map(|pos| KvRow { slot: s.slot, pos }));
            lasts.push(rows.len() - 1);
        }
        let (m, n) = (ids.len(), steps.len());
        let created = &self.bind_groups_created;
        let mut r = self.shapes.take(&(m, n), || StepResources::new(&self.gpu, &self.cfg, m, n, created));
        let out = self.record_and_run(&mut r, &ids, &rows, &lasts, head);
        self.shapes.put((m, n), r);
        let out = out?;
        for s in steps {
            self.positions[s.slot] += s.ids.len();
        }
        self.passes += 1;
        Ok(out)
    }

    /// Writes a step's token ids and cache rows into `r`, records its passes over `r`'s buffers
    /// (reusing its bind groups), submits, and reads back the logits or argmax of `lasts`' rows.
    fn record_and_run(
        &self,
        r: &mut StepResources,
        ids: &[u32],
        rows: &[KvRow],
        lasts: &[usize],
        head: Head,
    ) -> Result<Vec<f32>> {
        let cfg = &self.cfg;
        let (h, f, m, n) = (cfg.hidden, cfg.ffn, ids.len(), lasts.len());
        let gpu = &self.gpu;
        let k = &self.kernels;
        gpu.queue.write_buffer(&r.ids, 0, bytemuck::cast_slice(ids));
        gpu.queue.write_buffer(&r.rows, 0, bytemuck::cast_slice(&KvRow::words(rows)));
        let (ids_buf, rows_buf, x, xn, qkv, ctx) = (&r.ids, &r.rows, &r.x, &r.xn, &r.qkv, &r.ctx);
        let (gate_up, act, last, last_n, logits, best) =
            (&r.gate_up, &r.act, &r.last, &r.last_n, &r.logits, &r.best);
        let q4 = |n: usize, kk: usize| QMatvecDims { m, n, k: kk, format: QuantFormat::Q4_1 };

        let mut encoder =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("llama") });
        {
            let mut pass = Pass::cached(&gpu.device, &mut encoder, &mut r.forward);
            k.gather_q8_0(&mut pass, [ids_buf, &self.weights.token_embd, x], m, h, cfg.vocab);
            for (l, w) in self.weights.layers.iter().enumerate() {
                let kv = KvCacheDims {
                    m,
                    heads: cfg.heads,
                    kv_heads: cfg.kv_heads,
                    layer_offset: l * MAX_CONTEXT * cfg.kv_dim(),
                    slot_stride: slot_len(cfg),
                };
                k.rms_norm(&mut pass, [x, &w.attn_norm, xn], m, h, cfg.rms_eps);
                k.qmatvec(&mut pass, [xn, &w.qkv, qkv], q4(cfg.qkv_dim(), h), false);
                k.rope_store(&mut pass, [qkv, &self.k_cache, &self.v_cache, &self.rope, rows_buf], kv);
                k.cached_attention(&mut pass, [qkv, &self.k_cache, &self.v_cache, ctx, rows_buf], kv);
                k.qmatvec(&mut pass, [ctx, &w.attn_out, x], q4(h, h), true);
                k.rms_norm(&mut pass, [x, &w.ffn_norm, xn], m, h, cfg.rms_eps);
                k.qmatvec(&mut pass, [xn, &w.gate_up, gate_up], q4(2 * f, h), false);
                k.silu_mul(&mut pass, [gate_up, act], m, f);
                k.qmatvec(&mut pass, [act, &w.down, x], q4(h, f), true);
            }
        }
        // Only each step's last token's logits are needed: copy those rows out, then a second
        // pass in the same command buffer.
        for (i, &row) in lasts.iter().enumerate() {
            let row_bytes = (h * 4) as u64;
            encoder.copy_buffer_to_buffer(x, row as u64 * row_bytes, last, i as u64 * row_bytes, row_bytes);
        }
        {
            let mut pass = Pass::cached(&gpu.device, &mut encoder, &mut r.head);
            k.rms_norm(&mut pass, [last, &self.weights.output_norm, last_n], n, h, cfg.rms_eps);
            let lm_head = QMatvecDims { m: n, n: cfg.vocab, k: h, format: QuantFormat::Q8_0 };
            k.qmatvec(&mut pass, [last_n, &self.weights.token_embd, logits], lm_head, false);
            if matches!(head, Head::Argmax) {
                k.argmax(&mut pass, [logits, best], n, cfg.vocab);
            }
        }
        match head {
            Head::Logits => gpu.submit_and_read_through(encoder, &r.logits, &r.readback, n * cfg.vocab),
            Head::Argmax => gpu.submit_and_read_through(encoder, &r.best, &r.readback, n),
        }
    }
}

/// f32s of one sequence's K (or V) cache: every layer's positions.
fn slot_len(cfg: &LlamaConfig) -> usize {
    cfg.layers * MAX_CONTEXT * cfg.kv_dim()
}

impl Decoder for GpuLlama {
    fn slots(&self) -> usize {
        self.positions.len()
    }

    fn reset_slot(&mut self, slot: usize) {
        // Positions past a slot's own are never read, so the cache needs no clearing.
        if let Some(p) = self.positions.get_mut(slot) {
            *p = 0;
        }
    }

    fn slot_position(&self, slot: usize) -> usize {
        self.positions.get(slot).copied().unwrap_or(0)
    }

    fn forward_logits(&mut self, steps: &[SeqStep<'_>]) -> Result<Vec<Vec<f32>>> {
        let vocab = self.cfg.vocab;
        Ok(self.step(steps, Head::Logits)?.chunks_exact(vocab).map(<[f32]>::to_vec).collect())
    }

    fn forward_greedy(&mut self, steps: &[SeqStep<'_>]) -> Result<Vec<u32>> {
        let out = self.step(steps, Head::Argmax)?;
        if out.len() != steps.len() {
            return Err(Error::Gpu(format!("argmax read back {} of {} tokens", out.len(), steps.len())));
        }
        Ok(out.iter().map(|v| v.to_bits()).collect())
    }

    fn passes(&self) -> u64 {
        self.passes
    }
}
