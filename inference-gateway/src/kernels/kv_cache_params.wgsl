// The uniform and row table both KV-cache shaders (rope_store, cached_attention) read: the
// same host struct fills them, so they are declared once and prepended to both sources.

struct Params {
    m: u32,
    heads: u32,
    kv_heads: u32,
    // Offset of this layer's first position inside a slot, in f32s.
    layer_offset: u32,
    // f32s per slot: every layer's positions of one sequence.
    slot_stride: u32,
    _a: u32,
    _b: u32,
    _c: u32,
}

// Per row of qkv: (slot, position). Rows of one sequence or of several, in any order, so a
// prefill and a batched decode step are the same dispatch.
struct Row {
    slot: u32,
    pos: u32,
}
