// The uniform both KV-cache shaders (rope_store, cached_attention) read: the same host struct
// fills it, so it is declared once and prepended to both sources.

struct Params {
    m: u32,
    pos0: u32,
    heads: u32,
    kv_heads: u32,
    cache_offset: u32,
    _a: u32,
    _b: u32,
    _c: u32,
}

